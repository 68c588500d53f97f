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

import re
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode

from evalport.adapters.formats.yaml_checks import (
    FLOAT_TAG,
    INT_TAG,
    MAX_BYTES_ENV,
    MAX_DEPTH_ENV,
    MAX_NODES_ENV,
    MERGE_TAG,
    YamlLimitError,
    YamlLimits,
    check_graph,
    check_keys,
    check_scalar,
    check_tree,
    too_deep,
    too_large,
    too_many,
)

__all__ = [
    "MAX_BYTES_ENV",
    "MAX_DEPTH_ENV",
    "MAX_NODES_ENV",
    "YamlLimitError",
    "YamlLimits",
    "load_yaml_bytes",
    "too_large",
]


_LONG_LINE = re.compile(rb"[^\n]{2000,}")

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
            check_graph(node, limits)
        elif limits.max_depth <= _MAX_RECURSIVE_DEPTH:
            try:
                return _TreeBuilder(loader, node, limits).build()
            except _Unusual:
                pass
        check_tree(node, limits)
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
#: The floats a dumper writes (``0.1758``, ``-1.5e-05``): no ``_``, no sexagesimal, no ``.inf``.
_PLAIN_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?")


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
            raise YamlLimitError(too_deep(self.limits), node.start_mark)
        value = node.value
        self.count += 2 * len(value) if cls is MappingNode else len(value)
        if self.count > self.limits.max_nodes:
            raise YamlLimitError(too_many(self.limits), node.start_mark)
        depth += 1
        if cls is MappingNode:
            if node.tag != _MAP:
                raise _Unusual
            out: dict[Any, Any] = {}
            for key_node, item_node in value:
                if key_node.tag == MERGE_TAG:
                    raise _Unusual
                key = self._node(key_node, depth)
                try:
                    out[key] = self._node(item_node, depth)
                except TypeError:  # an unhashable key: PyYAML's own error names it
                    raise _Unusual from None
            if len(out) != len(value):
                check_keys(node, self.root)
            return out
        if node.tag != _SEQ:
            raise _Unusual
        return [self._node(item, depth) for item in value]

    def _scalar(self, node: ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if tag == _STR:
            return value
        if tag == INT_TAG:
            if (
                len(value) < 20
                and _DIGITS.fullmatch(value)
                and (len(value) == 1 or value.lstrip("+-")[0] != "0")
            ):
                return int(value)
            check_scalar(node, self.root)
        elif tag == FLOAT_TAG:
            if _PLAIN_FLOAT.fullmatch(value):
                number = float(value)  # what PyYAML makes of a plain decimal, without its five calls
                if number - number == 0.0:  # finite: inf - inf is nan
                    return number
            check_scalar(node, self.root)
        elif tag == _NULL:
            return None
        elif tag == _BOOL:
            return SafeConstructor.bool_values[value.lower()]
        return self.loader.construct_object(node, deep=True)


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
                    raise YamlLimitError(too_deep(limits), event.start_mark)
            elif isinstance(event, ends):
                depth -= 1
    finally:
        loader.dispose()
