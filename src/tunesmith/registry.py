"""Short names choose components; a miss lists what exists. Installed packages add components through
entry points (`load_plugins`): installed code is trusted like any import, files and run folders never are."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from tunesmith.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → component table for one axis of variation (formats, methods, ...)."""

    def __init__(
        self, kind: str, config_key: str, plugin_group: str | None = None, default: str | None = None
    ) -> None:
        self.kind = kind
        self.config_key = config_key
        self.default = default  # the name a config that chooses none gets
        self._items: dict[str, T] = {}
        # installed packages' components (entry points) join at the first lookup, not at import: a plugin
        # module imports tunesmith's seams, which must be fully loaded by then
        self._plugin_group = plugin_group

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = item
            return item

        return add

    def _with_plugins(self) -> dict[str, T]:
        if self._plugin_group is not None:
            group, self._plugin_group = self._plugin_group, None
            self.load_plugins(group)
        return self._items

    def get(self, name: str) -> T:
        self._with_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise UserError(
                f"{self.config_key}: unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._with_plugins())

    def registered(self) -> list[str]:
        """Names in the order they were registered (built-ins first, then plugins)."""
        return list(self._with_plugins())

    def load_plugins(self, group: str) -> None:
        """Register what installed packages declare under the entry-point GROUP (e.g. `tunesmith.methods`);
        each entry names a component (or its class) whose `name` is the entry's name."""
        for point in sorted(entry_points(group=group), key=lambda p: p.name):
            item = load_entry_point(point, group)
            if isinstance(item, type):
                item = item()
            if getattr(item, "name", point.name) != point.name:
                raise UserError(
                    f"plugin {point.value} (entry point {point.name!r} in {group}) is named {item.name!r}"  # type: ignore[attr-defined]
                )
            if point.name in self._items:
                raise UserError(f"plugin {point.value} ({group}): {self.kind} {point.name!r} exists already")
            self.register(point.name)(item)

    def __contains__(self, name: object) -> bool:
        return name in self._with_plugins()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def load_entry_point(point: Any, group: str) -> Any:
    """The object an entry point names; a plugin that fails to import is one line naming it."""
    try:
        return point.load()
    except Exception as exc:  # a third-party import: any error is the plugin's, said in one line
        raise UserError(
            f"plugin {point.value} (entry point {point.name!r} in {group}) failed to load: {type(exc).__name__}: {exc}"
        ) from None


def plugin_tables(group: str) -> Iterator[tuple[str, Any]]:
    """(name, object) for each entry point of GROUP, for the tables that are plain dicts (objectives)."""
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        yield point.name, load_entry_point(point, group)
