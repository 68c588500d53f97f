"""YAML from outside, loaded with limits: size, nesting depth, alias expansion, number range, duplicate keys.

libyaml composes the node graph (fast, in C); the graph is then checked without Python recursion
before anything is constructed:

- nesting depth and the node count *after alias expansion* (a "billion laughs" file of nested
  anchors is a few hundred bytes that expand to billions of nodes); expanded sizes are memoised per
  node, so a DAG of aliases costs O(nodes), and an alias inside its own anchor (a cycle) is an error;
- a mapping that holds the same key twice is an error naming the key and both lines (YAML says
  keys are unique; PyYAML would silently keep the last value);
- an integer or float literal that cannot be a finite float (``1e400``, 400 digits) is an error
  naming its key path (``.inf`` and ``.nan`` written as such are values, not errors).

libyaml's own composer recurses in C and crashes the process on very deep flow nesting
(``[[[[...``), so the depth of a document that could be that deep is measured first on the event
stream (a flat loop); the cheap bound that spares typical files this pass is in :func:`_may_be_deep`.

Limits (defaults in brackets) can be raised through environment variables:
``EVALPORT_YAML_MAX_BYTES`` [16 MiB, checked before the file is read], ``EVALPORT_YAML_MAX_DEPTH``
[100], ``EVALPORT_YAML_MAX_NODES`` [1,000,000 nodes after alias expansion].

Every failure is a :class:`YamlLimitError`, a ``yaml.YAMLError`` with ``problem`` and
``problem_mark`` like PyYAML's own, so callers report it the same way.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES_ENV = "EVALPORT_YAML_MAX_BYTES"
MAX_DEPTH_ENV = "EVALPORT_YAML_MAX_DEPTH"
MAX_NODES_ENV = "EVALPORT_YAML_MAX_NODES"

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    """The safe loader, with the tag of each plain scalar memoised per process (bounded).

    The composer asks the resolver for the tag of every scalar; the answer depends only on the
    value and whether it was plain or quoted, and the same keys and values recur in every file.
    """

    _tags: dict[tuple[str, tuple[bool, bool]], str] = {}

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        if not self.yaml_path_resolvers:
            # The composer calls these around every node; without path resolvers (none is
            # registered unless some code calls yaml.add_path_resolver) PyYAML's own do nothing,
            # and a C callable doing nothing spares a Python call per node (840,000 in a team's export).
            self.descend_resolver = _ignore_two
            self.ascend_resolver = tuple

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode:
            if implicit[0] and len(value) < 64:
                key = (value, implicit)
                tag = self._tags.get(key)
                if tag is None:
                    tag = super().resolve(kind, value, implicit)
                    if len(self._tags) < 50_000:
                        self._tags[key] = tag
                return tag
        elif not self.yaml_path_resolvers:
            return _MAP if kind is MappingNode else _SEQ  # what PyYAML answers for a collection
        return super().resolve(kind, value, implicit)


#: Takes two arguments and does nothing, in C (see ``_Loader.__init__``).
_ignore_two = slice


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_NUMBER_TAGS = frozenset({_INT, _FLOAT})
# No float's digits fit in fewer characters than this without being checked exactly.
_SHORT_NUMBER = 300
_LONG_LINE = re.compile(rb"[^\n]{2000,}")


class YamlLimitError(yaml.YAMLError):
    """A YAML document that is too large, too deep, cyclic, ambiguous or out of range."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        self.problem = problem
        self.problem_mark = mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        super().__init__(f"{problem}{where}")


@dataclass(frozen=True, slots=True)
class YamlLimits:
    max_bytes: int = 16 * 1024 * 1024
    max_depth: int = 100
    max_nodes: int = 1_000_000

    @classmethod
    def from_env(cls) -> YamlLimits:
        """The limits the environment sets (an unset, empty, invalid or non-positive value: the default)."""
        env = os.environ
        return _limits_from(env.get(MAX_BYTES_ENV), env.get(MAX_DEPTH_ENV), env.get(MAX_NODES_ENV))


@functools.lru_cache(maxsize=16)
def _limits_from(max_bytes: str | None, max_depth: str | None, max_nodes: str | None) -> YamlLimits:
    defaults = YamlLimits()
    return YamlLimits(
        max_bytes=_positive_int(max_bytes, defaults.max_bytes),
        max_depth=_positive_int(max_depth, defaults.max_depth),
        max_nodes=_positive_int(max_nodes, defaults.max_nodes),
    )


def _positive_int(raw: str | None, default: int) -> int:
    try:
        value = int((raw or "").strip())
    except ValueError:
        return default
    return value if value > 0 else default


def load_yaml_bytes(data: bytes | str, limits: YamlLimits | None = None) -> Any:
    """The document in ``data``, constructed only once its node graph passed every check."""
    limits = limits or YamlLimits.from_env()
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > limits.max_bytes:
        raise YamlLimitError(too_large(len(raw), limits))
    if _may_be_deep(raw):
        _check_event_depth(raw, limits)
    loader = _Loader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if b"&" in raw:
            _check_graph(node, limits)
        elif limits.max_depth <= _MAX_RECURSIVE_DEPTH:
            try:
                return _TreeBuilder(loader, node, limits).build()
            except _Unusual:
                pass
        _check_tree(node, limits)
        return loader.construct_document(node)
    finally:
        loader.dispose()


_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MAX_RECURSIVE_DEPTH = 500
_DIGITS = re.compile(r"[-+]?[0-9]+")


class _Unusual(Exception):
    """The tree holds something the one-pass builder leaves to PyYAML (a merge key, a tagged collection)."""


class _TreeBuilder:
    """Checks and constructs an anchor-free document in one recursive pass (depth is bounded first).

    The same values as PyYAML's SafeConstructor for plain maps, sequences and the core scalar tags;
    anything else (``<<`` merges, ``!!set``, ``!!omap``, unknown tags on collections) raises
    :class:`_Unusual` so the caller takes the two-pass path. Scalars with other tags (timestamps,
    binary) are constructed by PyYAML one node at a time.
    """

    def __init__(self, loader: Any, root: Node, limits: YamlLimits) -> None:
        self.loader, self.root, self.limits = loader, root, limits
        self.count = 1

    def build(self) -> Any:
        return self._node(self.root, 1)

    def _node(self, node: Node, depth: int) -> Any:
        cls = node.__class__
        if cls is ScalarNode:
            return self._scalar(node)
        if depth > self.limits.max_depth:
            raise YamlLimitError(_too_deep(self.limits), node.start_mark)
        value = node.value
        self.count += 2 * len(value) if cls is MappingNode else len(value)
        if self.count > self.limits.max_nodes:
            raise YamlLimitError(_too_many(self.limits), node.start_mark)
        depth += 1
        if cls is MappingNode:
            if node.tag != _MAP:
                raise _Unusual
            out: dict[Any, Any] = {}
            for key_node, item_node in value:
                if key_node.tag == _MERGE:
                    raise _Unusual
                key = self._node(key_node, depth)
                try:
                    out[key] = self._node(item_node, depth)
                except TypeError:  # an unhashable key: PyYAML's own error names it
                    raise _Unusual from None
            if len(out) != len(value):
                _check_keys(node, self.root)
            return out
        if node.tag != _SEQ:
            raise _Unusual
        return [self._node(item, depth) for item in value]

    def _scalar(self, node: ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if tag == _STR:
            return value
        if tag == _INT:
            if (
                len(value) < 20
                and _DIGITS.fullmatch(value)
                and (len(value) == 1 or value.lstrip("+-")[0] != "0")
            ):
                return int(value)
            _check_scalar(node, self.root)
        elif tag == _FLOAT:
            _check_scalar(node, self.root)
        elif tag == _NULL:
            return None
        elif tag == _BOOL:
            return SafeConstructor.bool_values[value.lower()]
        return self.loader.construct_object(node, deep=True)


def too_large(size: int, limits: YamlLimits) -> str:
    return (
        f"the file is {size:,} bytes, over the limit of {limits.max_bytes:,}; "
        f"raise {MAX_BYTES_ENV} if it is genuine"
    )


def _may_be_deep(raw: bytes) -> bool:
    """False when the document cannot nest deeper than a few thousand levels (libyaml copes with
    that), so only odd files pay for the event pass.

    Block collections nest by column (at most two levels per column: a mapping whose value is a
    sequence at the same indentation), flow collections by ``[`` and ``{``; so the depth is at most
    twice the longest line plus the number of brackets.
    """
    brackets = raw.count(b"[") + raw.count(b"{")
    return brackets > 1000 or _LONG_LINE.search(raw) is not None


def _check_event_depth(raw: bytes, limits: YamlLimits) -> None:
    loader = _Loader(raw)
    starts = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
    ends = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    depth = 0
    try:
        while (event := loader.get_event()) is not None:
            if isinstance(event, starts):
                depth += 1
                if depth > limits.max_depth:
                    raise YamlLimitError(_too_deep(limits), event.start_mark)
            elif isinstance(event, ends):
                depth -= 1
    finally:
        loader.dispose()


def _too_deep(limits: YamlLimits) -> str:
    return f"nested deeper than {limits.max_depth} levels; raise {MAX_DEPTH_ENV} if it is genuine"


def _too_many(limits: YamlLimits) -> str:
    return (
        f"more than {limits.max_nodes:,} values once aliases are expanded (nested anchors?); "
        f"raise {MAX_NODES_ENV} if it is genuine"
    )


def _check_scalar(node: ScalarNode, root: Node) -> None:
    """Integers and floats must fit a finite float; cheap unless the literal is long or has an exponent."""
    value = node.value
    if node.tag == _INT:
        if len(value) < _SHORT_NUMBER:
            return
    elif node.tag == _FLOAT:
        if len(value) < _SHORT_NUMBER and "e" not in value and "E" not in value:
            return
    else:
        return
    try:
        if node.tag == _INT:
            number = float(SafeConstructor.construct_yaml_int(_NO_LOADER, node))
        else:
            number = SafeConstructor.construct_yaml_float(_NO_LOADER, node)
    except (OverflowError, ValueError):  # int() refuses over 4300 digits with a ValueError
        number = math.inf
    if math.isfinite(number):
        return
    shown = value if len(value) <= 40 else f"{value[:20]}...({len(value)} characters)"
    raise YamlLimitError(
        f"{key_path(root, node)}: the number {shown} is out of range (larger than a float can hold)",
        node.start_mark,
    )


class _NoLoader:
    """Stands in for ``self`` of PyYAML's scalar constructors, which use only the node."""

    inf_value = math.inf
    nan_value = math.nan

    def construct_scalar(self, node: ScalarNode) -> str:
        return node.value


_NO_LOADER = _NoLoader()


def _check_keys(node: MappingNode, root: Node) -> None:
    try:
        if len({k.value for k, _ in node.value}) == len(node.value):
            return
    except TypeError:  # a collection as a key: check the scalar keys only
        pass
    seen: dict[tuple[str, str], ScalarNode] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.tag == _MERGE:
            continue
        first = seen.setdefault((key.tag, key.value), key)
        if first is not key:
            where = key_path(root, node)
            raise YamlLimitError(
                f"duplicate key {key.value!r}{' in ' + where if where else ''} "
                f"(first at line {first.start_mark.line + 1}); keep one of them",
                key.start_mark,
            )


def _check_tree(root: Node, limits: YamlLimits) -> None:
    """A document without anchors is a tree: one pass, no memo; scalars are checked where they are met.

    The hot loop of every load: ``__class__ is`` and a tag set keep it at a fraction of construction.
    """
    if root.__class__ is ScalarNode:
        _check_scalar(root, root)
        return
    count = 1
    stack: list[tuple[Node, int]] = [(root, 1)]
    push, numbers = stack.append, _NUMBER_TAGS
    max_depth, max_nodes = limits.max_depth, limits.max_nodes
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise YamlLimitError(_too_deep(limits), node.start_mark)
        depth += 1
        value = node.value
        if node.__class__ is MappingNode:
            _check_keys(node, root)
            count += 2 * len(value)
            for key, item in value:
                if key.__class__ is not ScalarNode:
                    push((key, depth))
                elif key.tag in numbers:
                    _check_scalar(key, root)
                if item.__class__ is not ScalarNode:
                    push((item, depth))
                elif item.tag in numbers:
                    _check_scalar(item, root)
        else:
            count += len(value)
            for item in value:
                if item.__class__ is not ScalarNode:
                    push((item, depth))
                elif item.tag in numbers:
                    _check_scalar(item, root)
        if count > max_nodes:
            raise YamlLimitError(_too_many(limits), node.start_mark)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return node.value
    return []


def _check_graph(root: Node, limits: YamlLimits) -> None:
    """A document with anchors is a DAG (or worse): expanded size and depth memoised per node.

    Iterative post-order; the nodes whose exit is pending are exactly the ancestors of the node
    being entered, so meeting one of them again is a cycle.
    """
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, depth)
    open_: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            open_.discard(key)
            size, depth = 1, 0
            for child in _children(node):
                child_size, child_depth = done[id(child)]
                size += child_size
                depth = max(depth, child_depth)
            depth += 1
            if depth > limits.max_depth:
                raise YamlLimitError(_too_deep(limits), node.start_mark)
            if size > limits.max_nodes:
                raise YamlLimitError(_too_many(limits), node.start_mark)
            done[key] = (size, depth)
            continue
        if key in done:
            continue
        if isinstance(node, ScalarNode):
            _check_scalar(node, root)
            done[key] = (1, 1)
            continue
        if isinstance(node, MappingNode):
            _check_keys(node, root)
        open_.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_:
                raise YamlLimitError(
                    "an alias refers to a collection that contains it (a recursive alias)", node.start_mark
                )
            if id(child) not in done:
                stack.append((child, False))


def key_path(root: Node, target: Node) -> str:
    """``a.b[2].c``: where ``target`` sits below ``root`` (searched only when reporting an error)."""
    seen: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, ScalarNode) else "?"
                stack.append((value, f"{path}.{name}" if path else str(name)))
                stack.append((key, path))
        elif isinstance(node, SequenceNode):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(node.value))
    return ""
