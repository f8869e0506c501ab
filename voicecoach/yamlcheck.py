"""Safe reading of YAML files and typed access to their nodes, with positions for every error.

Routine files are written by hand, often by someone who is not a programmer, and a wrong value
can change a dose. So validation works on `yaml.compose` nodes rather than loaded values: every
error can then name the line and column of the offending key or value. Only the tags that
`yaml.safe_load` understands are accepted, and the reader refuses oversized, aliased-to-death or
too deeply nested input before it can cost time or memory.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1024 * 1024
"""Routine files are a page or two; anything bigger is a mistake or an attack."""
MAX_ALIASES = 16
"""Aliases (*name) allowed per file: enough for reuse, too few for a "billion laughs" blow-up."""
MAX_DEPTH = 32
"""Nesting allowed per file: routines need 3 levels; deeper input would only recurse."""

_TAG = "tag:yaml.org,2002:"
SAFE_TAGS = frozenset(tag for tag in yaml.SafeLoader.yaml_constructors if tag)
_KINDS = {"bool": "a yes/no value", "int": "a number", "float": "a number",
          "null": "an empty value", "timestamp": "a date", "binary": "binary data"}


class Invalid(Exception):
    """A problem in a YAML file, with its 1-based line and column when known."""

    def __init__(self, message: str, line: Optional[int] = None, column: Optional[int] = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def at(node: Node, message: str) -> Invalid:
    """An error pointing at where `node` starts."""
    return Invalid(message, node.start_mark.line + 1, node.start_mark.column + 1)


def read_text(path: Union[str, "os.PathLike[str]"]) -> str:
    """Read a small UTF-8 file, refusing directories, devices, FIFOs and big files unread."""
    try:
        # O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise Invalid("no such file") from None
    except IsADirectoryError:
        raise Invalid("this is a directory, expected a routine file (.yaml)") from None
    except PermissionError:
        raise Invalid("permission denied: the file cannot be read") from None
    except (OSError, ValueError) as e:
        raise Invalid(f"cannot open the file: {getattr(e, 'strerror', None) or e}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Invalid("this is a directory, expected a routine file (.yaml)")
        if not stat.S_ISREG(info.st_mode):
            raise Invalid("this is not a regular file, expected a routine file (.yaml)")
        if info.st_size > MAX_BYTES:
            raise Invalid(f"routine files are at most 1 MiB, this one is "
                          f"{info.st_size / 2**20:.1f} MiB")
        data = b""
        while len(data) <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as e:
        raise Invalid(f"cannot read the file: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise Invalid("routine files are at most 1 MiB")
    return decode(data)


def decode(data: bytes) -> str:
    """Decode UTF-8 (with or without a byte-order mark), pointing at the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        head = data[: e.start]
        line_start = head.rfind(b"\n") + 1
        column = len(head[line_start:].decode("utf-8", "replace")) + 1
        raise Invalid(f"the file is not UTF-8 text (byte 0x{data[e.start]:02x}); "
                      "save it as UTF-8", head.count(b"\n") + 1, column) from None


class _Loader(yaml.SafeLoader):
    """SafeLoader whose composer counts aliases and depth, so hostile input stays cheap."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Optional[Node], index: Any) -> Node:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise Invalid(f"too many aliases (*name): at most {MAX_ALIASES} are allowed",
                              mark.line + 1, mark.column + 1)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Invalid(f"nested too deeply: at most {MAX_DEPTH} levels are allowed",
                          mark.line + 1, mark.column + 1)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def compose(text: str) -> Optional[Node]:
    """Parse one YAML document into nodes (None when empty); syntax errors become Invalid."""
    loader = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = "; ".join(str(p) for p in (e.context, e.problem) if p)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise Invalid(f"YAML syntax error: {what}", line, column) from None
    except yaml.reader.ReaderError as e:
        head = text[: e.position]
        column = len(head) - (head.rfind("\n") + 1) + 1
        raise Invalid(f"character #x{e.character:04x} is not allowed in a YAML file",
                      head.count("\n") + 1, column) from None
    except yaml.YAMLError as e:
        raise Invalid(f"YAML error: {e}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is not None:
        _check_tags(root)
    return root


def _check_tags(root: Node) -> None:
    """Refuse any tag `yaml.safe_load` would not construct (python objects, local tags...)."""
    seen = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag == _TAG + "merge":
            raise at(node, "merge keys (<<) are not supported in routine files")
        if node.tag not in SAFE_TAGS:
            tag = node.tag.replace(_TAG, "!!", 1)
            raise at(node, f"the tag {tag} is not allowed: routine files hold only "
                           "text, numbers, lists and mappings")
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


def describe(node: Node) -> str:
    """How a node looks to the person who wrote it, for "got ..." in messages."""
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, MappingNode):
        return "a mapping"
    if node.tag == _TAG + "null":
        return "nothing (an empty value)"
    text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    return repr(text) if node.tag == _TAG + "str" else text


def _kind(node: Node) -> str:
    return _KINDS.get(node.tag[len(_TAG):], "something else")


class Nodes:
    """Typed accessors for composed nodes; each raises Invalid pointing at the value."""

    def __init__(self) -> None:
        self._constructor = yaml.constructor.SafeConstructor()

    def scalar(self, node: Node, what: str) -> Any:
        """The Python value of a scalar, as `yaml.safe_load` would build it."""
        if not isinstance(node, ScalarNode):
            raise at(node, f"{what} must be a single value, got {describe(node)}")
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError):
            raise at(node, f"{what}: {describe(node)} cannot be read as {_kind(node)}") from None

    def mapping(self, node: Node, what: str, keys: Sequence[str]) -> Dict[str, Tuple[Node, Node]]:
        """Keys of a mapping with their key and value nodes; unknown or repeated keys fail."""
        if not isinstance(node, MappingNode):
            raise at(node, f"{what} must be a mapping of keys ({', '.join(keys)}), "
                           f"got {describe(node)}")
        found: Dict[str, Tuple[Node, Node]] = {}
        for key, value in node.value:
            name = self._key(key, what, keys)
            if name in found:
                first = found[name][0].start_mark.line + 1
                raise at(key, f"duplicate key '{name}' in {what} (first given on line {first})")
            found[name] = (key, value)
        return found

    def _key(self, key: Node, what: str, keys: Sequence[str]) -> str:
        if not isinstance(key, ScalarNode):
            raise at(key, f"keys in {what} must be plain words, got {describe(key)}")
        near = difflib.get_close_matches(str(key.value), keys, n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'?" if near else f"expected one of: {', '.join(keys)}"
        if key.tag != _TAG + "str":
            raise at(key, f"key {key.value!r} in {what} is read by YAML as {_kind(key)}, not as "
                          f"a name; {hint}")
        if key.value not in keys:
            raise at(key, f"unknown key '{key.value}' in {what}; {hint}")
        return key.value

    def text(self, node: Node, what: str, optional: bool = False) -> Optional[str]:
        """Non-empty text (stripped); None for an empty value when `optional`."""
        if optional and isinstance(node, ScalarNode) and node.tag == _TAG + "null":
            return None
        if not isinstance(node, ScalarNode) or node.tag != _TAG + "str":
            extra = ""
            if isinstance(node, ScalarNode) and node.tag != _TAG + "null":
                extra = f", which YAML reads as {_kind(node)}; put it in quotes"
            raise at(node, f"{what} must be text, got {describe(node)}{extra}")
        value = node.value.strip()
        if not value:
            raise at(node, f"{what} must not be empty")
        return value

    def whole(self, node: Node, what: str, low: int, high: int, unit: str = "") -> int:
        """A whole number in [low, high]; bools and floats (even 10.0) are refused."""
        value = self.scalar(node, what) if isinstance(node, ScalarNode) else None
        if type(value) is not int or not low <= value <= high:
            raise at(node, f"{what} must be a whole number{unit} from {low} to {high}, "
                           f"got {describe(node)}")
        return value

    def number(self, node: Node, what: str, low: float, high: float, unit: str = "") -> float:
        """A finite number in [low, high]; bools are refused although Python counts them."""
        value = self.scalar(node, what) if isinstance(node, ScalarNode) else None
        if (type(value) not in (int, float) or not math.isfinite(value)
                or not low <= value <= high):
            raise at(node, f"{what} must be a number{unit} from {low:g} to {high:g}, "
                           f"got {describe(node)}")
        return float(value)

    def text_list(self, node: Node, what: str, item: str) -> List[Tuple[str, Node]]:
        """A list of non-empty texts, each with its node for later errors."""
        if not isinstance(node, SequenceNode):
            raise at(node, f"{what} must be a list (one '- item' per line), got {describe(node)}")
        return [(self.text(child, f"{what} {item} {i}"), child)  # type: ignore[misc]
                for i, child in enumerate(node.value, 1)]
