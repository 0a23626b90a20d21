"""Account fixtures: what an account held before segsync came, as a YAML or JSON file.

Each platform emulator that can start from a lived-in account mixes in `Seedable`, names its
pydantic schema (`fixture_model`, a `FixtureModel`: unknown keys are refused) and applies a
validated fixture in `apply_fixture`. Contract:

- `emulator.load_fixture(data)` validates `data` (a mapping or a model) and applies it on top
  of what the emulator holds; every problem raises one `FixtureError` that lists each place
  (`contacts[2].status: ...`), before anything is applied;
- `Emulator.from_fixture(path_or_name, **kwargs)` builds an emulator and loads the file, or
  the fixture shipped in the connector package when given a bundled name (`lived-in`);
- `bundled_fixture(name)` is that shipped file: `<connector package>/fixtures/<name>.yaml`.

Times (`Stamp`) are ISO-8601 date-times with an offset, or relative to the emulator clock
when loaded: `400d`, `36h`, `15m`, `0d` mean that long before now. A time after now is
refused (an incremental read would never see the record).
"""

from __future__ import annotations

import abc
import datetime as dt
import importlib.resources
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    import importlib.resources.abc

    from segsync.clock import Clock

__all__ = [
    "BUNDLED_FIXTURES",
    "FixtureError",
    "FixtureModel",
    "Seedable",
    "Stamp",
    "read_fixture",
    "resolve_stamp",
    "validate_fixture",
]

#: names of the fixtures a connector package ships (`<package>/fixtures/<name>.yaml`)
BUNDLED_FIXTURES = ("lived-in",)

_RELATIVE = re.compile(r"^(\d+)([dhms])$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class FixtureError(ValueError):
    """A fixture that cannot be read or validated; `problems` are `place: message` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(
            f"fixture {source} is invalid:\n" + "\n".join(f"  {p}" for p in problems)
        )


def _check_stamp(value: str) -> str:
    if _RELATIVE.match(value):
        return value
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            "not a time: an ISO-8601 date-time with offset, or '<N>d|h|m|s' before now"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError("an ISO-8601 date-time needs an offset (e.g. +00:00 or Z)")
    return value


Stamp = Annotated[str, AfterValidator(_check_stamp)]
"""An absolute ISO-8601 date-time with offset, or `<N>d|h|m|s` before the clock's now."""


def resolve_stamp(stamp: str, now: dt.datetime) -> dt.datetime:
    """The date-time `stamp` means when the clock reads `now`."""
    match = _RELATIVE.match(stamp)
    if match:
        return now - dt.timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    return dt.datetime.fromisoformat(stamp)


class FixtureModel(BaseModel):
    """Base of every fixture model: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


M = TypeVar("M", bound=FixtureModel)


def _place(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def validate_fixture(model: type[M], data: Any, source: str = "<data>") -> M:
    """`data` as `model`; raises `FixtureError` naming the place of every problem."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_place(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise FixtureError(source, problems) from None


def read_fixture(path: Path | str) -> Any:
    """The parsed content of a `.json`, `.yaml` or `.yml` file (FixtureError otherwise)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FixtureError(str(path), [f"cannot read: {exc.strerror}"]) from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise FixtureError(str(path), [f"line {exc.lineno}: {exc.msg}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(parse)"
        raise FixtureError(str(path), [f"{where}: {getattr(exc, 'problem', exc)}"]) from None


class Seedable(abc.ABC):
    """Mixin of an emulator (or its state) that starts from a fixture; see the module doc."""

    fixture_model: ClassVar[type[FixtureModel]]
    clock: Clock

    @abc.abstractmethod
    def apply_fixture(self, fixture: Any) -> None:
        """Stage the validated `fixture` (an instance of `fixture_model`) in this account.

        Raises FixtureError for what only the account can refuse (a time after now, a list
        the fixture names but does not define)."""

    def load_fixture(self, data: Any, *, source: str = "<data>") -> None:
        """Validate `data` against `fixture_model` and apply it (FixtureError: nothing applied
        when the schema refuses it)."""
        fixture = validate_fixture(self.fixture_model, data, source)
        try:
            self.apply_fixture(fixture)
        except FixtureError as exc:
            if exc.source == source:
                raise
            raise FixtureError(source, exc.problems) from None

    def fixture_time(self, stamp: str | None, place: str, source: str = "<data>") -> dt.datetime:
        """The time `stamp` means now (now when None); FixtureError at `place` if after now."""
        now = self.clock.now()
        if stamp is None:
            return now
        when = resolve_stamp(stamp, now)
        if when > now:
            raise FixtureError(source, [f"{place}: {stamp} is after the emulator's now ({now})"])
        return when

    @classmethod
    def bundled_fixture(cls, name: str = "lived-in") -> importlib.resources.abc.Traversable:
        """The fixture `name` shipped in the package that declares `fixture_model`."""
        owner = next((k for k in cls.__mro__ if "fixture_model" in vars(k)), cls)
        package = owner.__module__.partition(".")[0]
        resource = importlib.resources.files(package) / "fixtures" / f"{name}.yaml"
        if not resource.is_file():
            raise FixtureError(f"{package}:{name}", ["no such bundled fixture"])
        return resource

    @classmethod
    def fixture_data(cls, path_or_name: Path | str) -> tuple[Any, str]:
        """The parsed fixture a path or a bundled name designates, and its source label."""
        if isinstance(path_or_name, str) and path_or_name in BUNDLED_FIXTURES:
            resource = cls.bundled_fixture(path_or_name)
            return yaml.safe_load(resource.read_text(encoding="utf-8")), path_or_name
        return read_fixture(path_or_name), str(path_or_name)

    @classmethod
    def from_fixture(cls, path_or_name: Path | str, **kwargs: Any) -> Self:
        """An emulator built with `kwargs`, then loaded with a fixture file or bundled name."""
        data, source = cls.fixture_data(path_or_name)
        emulator = cls(**kwargs)
        emulator.load_fixture(data, source=source)
        return emulator

