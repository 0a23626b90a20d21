"""What `segsync rebind` says before it forgets anything: the bound account, or plainly that
nothing is bound yet and what rebinding does then."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accounts_world import World, other_brevo

from segsync.cli.rebind import RebindOutcome, rebind


def shown(world: World) -> list[str]:
    said: list[str] = []

    def confirm(outcome: RebindOutcome) -> bool:
        said.extend(outcome.describe())
        return False  # nothing is forgotten

    world.loop.run_until_complete(rebind("brevo", world.connectors["brevo"],
                                         world.engine().state, clock=world.clock,
                                         confirm=confirm))
    return said


def test_an_unbound_platform_is_said_to_be_not_bound_yet() -> None:
    world = World()
    try:
        lines = shown(world)

        assert lines[0] == (
            "brevo: the state is not bound to an account yet; rebinding binds it to the "
            "account the configuration reaches (a sync binds it there too, without "
            "forgetting anything)"
        )
        assert "org:org-customer-0001" in lines[1]
        assert not any("bound to account not bound" in line for line in lines)
        assert world.engine().state.binding("brevo") is None
    finally:
        world.close()


def test_a_bound_platform_names_the_bound_account() -> None:
    world = World()
    try:
        world.sync()
        world.replace("brevo", world.brevo(other_brevo(world.clock)))

        lines = shown(world)

        assert lines[0].startswith("brevo: the state is bound to account Customer Ltd")
        assert "org:org-other-0002" in lines[1]
        assert lines[2].startswith("rebinding forgets, for brevo only: ")
    finally:
        world.close()
