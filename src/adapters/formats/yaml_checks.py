"""The limits a YAML document from outside is held to, and the checks of its composed node graph.

:mod:`evalport.adapters.formats.safe_yaml` loads the document; this module says what is too large,
too deep, cyclic, ambiguous (a key twice) or out of range (a number no float holds), and names
where, without Python recursion.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES_ENV = "EVALPORT_YAML_MAX_BYTES"
MAX_DEPTH_ENV = "EVALPORT_YAML_MAX_DEPTH"
MAX_NODES_ENV = "EVALPORT_YAML_MAX_NODES"

INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
MERGE_TAG = "tag:yaml.org,2002:merge"
_NUMBER_TAGS = frozenset({INT_TAG, FLOAT_TAG})
# No float's digits fit in fewer characters than this without being checked exactly.
_SHORT_NUMBER = 300


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


def too_large(size: int, limits: YamlLimits) -> str:
    return (
        f"the file is {size:,} bytes, over the limit of {limits.max_bytes:,}; "
        f"raise {MAX_BYTES_ENV} if it is genuine"
    )


def too_deep(limits: YamlLimits) -> str:
    return f"nested deeper than {limits.max_depth} levels; raise {MAX_DEPTH_ENV} if it is genuine"


def too_many(limits: YamlLimits) -> str:
    return (
        f"more than {limits.max_nodes:,} values once aliases are expanded (nested anchors?); "
        f"raise {MAX_NODES_ENV} if it is genuine"
    )


def check_scalar(node: ScalarNode, root: Node) -> None:
    """Integers and floats must fit a finite float; cheap unless the literal is long or has an exponent."""
    value = node.value
    if node.tag == INT_TAG:
        if len(value) < _SHORT_NUMBER:
            return
    elif node.tag == FLOAT_TAG:
        if len(value) < _SHORT_NUMBER and "e" not in value and "E" not in value:
            return
    else:
        return
    try:
        if node.tag == INT_TAG:
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


def check_keys(node: MappingNode, root: Node) -> None:
    try:
        if len({k.value for k, _ in node.value}) == len(node.value):
            return
    except TypeError:  # a collection as a key: check the scalar keys only
        pass
    seen: dict[tuple[str, str], ScalarNode] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.tag == MERGE_TAG:
            continue
        first = seen.setdefault((key.tag, key.value), key)
        if first is not key:
            where = key_path(root, node)
            raise YamlLimitError(
                f"duplicate key {key.value!r}{' in ' + where if where else ''} "
                f"(first at line {first.start_mark.line + 1}); keep one of them",
                key.start_mark,
            )


def check_tree(root: Node, limits: YamlLimits) -> None:
    """A document without anchors is a tree: one pass, no memo; scalars are checked where they are met.

    The hot loop of every load: ``__class__ is`` and a tag set keep it at a fraction of construction.
    """
    if root.__class__ is ScalarNode:
        check_scalar(root, root)
        return
    count = 1
    stack: list[tuple[Node, int]] = [(root, 1)]
    push, numbers = stack.append, _NUMBER_TAGS
    max_depth, max_nodes = limits.max_depth, limits.max_nodes
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise YamlLimitError(too_deep(limits), node.start_mark)
        depth += 1
        value = node.value
        if node.__class__ is MappingNode:
            check_keys(node, root)
            count += 2 * len(value)
            for key, item in value:
                if key.__class__ is not ScalarNode:
                    push((key, depth))
                elif key.tag in numbers:
                    check_scalar(key, root)
                if item.__class__ is not ScalarNode:
                    push((item, depth))
                elif item.tag in numbers:
                    check_scalar(item, root)
        else:
            count += len(value)
            for item in value:
                if item.__class__ is not ScalarNode:
                    push((item, depth))
                elif item.tag in numbers:
                    check_scalar(item, root)
        if count > max_nodes:
            raise YamlLimitError(too_many(limits), node.start_mark)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return node.value
    return []


def check_graph(root: Node, limits: YamlLimits) -> None:
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
                raise YamlLimitError(too_deep(limits), node.start_mark)
            if size > limits.max_nodes:
                raise YamlLimitError(too_many(limits), node.start_mark)
            done[key] = (size, depth)
            continue
        if key in done:
            continue
        if isinstance(node, ScalarNode):
            check_scalar(node, root)
            done[key] = (1, 1)
            continue
        if isinstance(node, MappingNode):
            check_keys(node, root)
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
