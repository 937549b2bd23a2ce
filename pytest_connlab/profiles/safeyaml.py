"""Bounded reading of the YAML files a user gives (profiles, inventories).

Only a regular file is opened (a FIFO, a device or a folder is refused without
blocking), at most ``MAX_BYTES``, strict UTF-8. The YAML is composed with bounds on
nesting, aliases and the expanded size (an alias bomb stops at the bound), duplicate
keys are refused, and every malformed shape, a bad tag value (``!!int abc``) included,
becomes a :class:`YamlInputError` with the line it is on.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from ..errors import YamlInputError

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_ALIASES = 64
MAX_NODES = 20_000  # counted with every alias expanded
MERGE_TAG = "tag:yaml.org,2002:merge"




def _line(mark: Any) -> str:
    return f"line {mark.line + 1}" if mark is not None else "yaml"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader with bounds on depth, aliases and expanded size, and no duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            if self._aliases > MAX_ALIASES:
                raise YamlInputError(_line(mark), f"more than {MAX_ALIASES} aliases (*name)")
            node = super().compose_node(parent, index)
            if node is None or id(node) not in self._sizes:
                raise YamlInputError(_line(mark), "an alias refers to a node that contains it")
            return node
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise YamlInputError(_line(mark), f"nested deeper than {MAX_DEPTH} levels")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:
            return node
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._sizes.get(id(child), 1) for child in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value)
        if size > MAX_NODES:
            raise YamlInputError(_line(node.start_mark), f"more than {MAX_NODES} values once aliases are "
                                 "expanded")
        self._sizes[id(node)] = size
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            raise ConstructorError(None, None, f"cannot read {node.tag} value {node.value!r}"
                                   if not isinstance(node.value, list) else f"cannot read {node.tag}: {exc}",
                                   node.start_mark) from None

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise ConstructorError(None, None, f"a key must be a plain value, got {type(key).__name__}",
                                           key_node.start_mark) from None
                if key in seen:
                    raise ConstructorError(None, None, f"duplicate key {key!r} (first on line {seen[key]})",
                                           key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The text of a regular file of at most ``max_bytes``, strict UTF-8; YamlInputError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise YamlInputError("file", f"cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise YamlInputError("file", "not a regular file (a folder, device, FIFO or socket is never read)")
        if info.st_size > max_bytes:
            raise YamlInputError("file", f"{info.st_size} bytes; at most {max_bytes} are read")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise YamlInputError("file", f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise YamlInputError("file", f"more than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise YamlInputError(f"line {line}", f"not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start})"
                             ) from None


def load(path: Path) -> Any:
    """The one YAML document in ``path``, read within the bounds above; YamlInputError otherwise."""
    text = read_text(path)
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)
        return loader.get_single_data()
    except YamlInputError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed"
        raise YamlInputError(_line(mark), f"not valid YAML ({problem})") from None
    except yaml.reader.ReaderError as exc:
        line = text[:exc.position].count("\n") + 1
        raise YamlInputError(f"line {line}", f"not valid YAML ({exc.reason} #x{exc.character:04x})") from None
    except yaml.YAMLError as exc:
        raise YamlInputError("yaml", f"not valid YAML ({exc})") from None
    except RecursionError:
        raise YamlInputError("yaml", f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()
