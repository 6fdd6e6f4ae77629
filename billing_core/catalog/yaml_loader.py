"""Reading catalog YAML safely and exactly.

- Floats become exact Decimals, never binary floats.
- Dates and times stay text, so the models parse them and report a bad one by its place
  (PyYAML would raise on an unquoted `2026-02-30`).
- Only `true`/`false` are booleans (`NO`, the country code of Norway, stays text).
- Aliases are refused (a few lines of anchors can expand to gigabytes), nesting is capped,
  and a key given twice in one mapping is an error naming the key.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from billing_core.limits import MAX_CATALOG_BYTES, MAX_YAML_DEPTH


class YamlProblem(ValueError):
    """A catalog file that cannot be read as YAML; the message names the place."""


class _Resolver(yaml.resolver.Resolver):
    pass


# Copy the resolvers without YAML 1.1's yes/no/on/off booleans and without timestamps.
_Resolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_Resolver.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|"
                                r"False|FALSE)$"), list("tTfF"))


class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
              yaml.composer.Composer, yaml.constructor.SafeConstructor, _Resolver):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise YamlProblem(f"line {event.start_mark.line + 1}, column "
                              f"{event.start_mark.column + 1}: YAML aliases (*name) are not "
                              f"allowed in a catalog; write the value out")
        self.depth += 1
        if self.depth > MAX_YAML_DEPTH:
            event = self.peek_event()
            raise YamlProblem(f"line {event.start_mark.line + 1}: nested more than "
                              f"{MAX_YAML_DEPTH} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if isinstance(key_node, ScalarNode):
                    key = self.construct_object(key_node, deep=True)
                    try:
                        if key in seen:
                            raise YamlProblem(
                                f"line {key_node.start_mark.line + 1}, column "
                                f"{key_node.start_mark.column + 1}: key {key!r} is given twice "
                                f"in one mapping (first on line {seen[key]})")
                        seen[key] = key_node.start_mark.line + 1
                    except TypeError:
                        pass  # unhashable keys are refused by the constructor itself
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def _construct_decimal(loader: _Loader, node: ScalarNode) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")
    if text.lower() in (".nan", ".inf", "-.inf", "+.inf"):
        return text  # left as text: refused by the models as 'not a finite number'
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def _construct_timestamp_text(loader: _Loader, node: ScalarNode) -> Any:
    return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:float",  # type: ignore[type-var]
                        _construct_decimal)
_Loader.add_constructor("tag:yaml.org,2002:timestamp",  # type: ignore[type-var]
                        _construct_timestamp_text)


def _decode(data: bytes) -> str:
    if len(data) > MAX_CATALOG_BYTES:
        raise YamlProblem(f"file is larger than {MAX_CATALOG_BYTES // (1024 * 1024)} MiB")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise YamlProblem(f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                          f"offset {exc.start}); save the catalog as UTF-8") from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise YamlProblem(f"line {line}: contains a NUL character") from None
    return text


def load_yaml(data: bytes) -> Any:
    """Parse one YAML document from bytes; raises YamlProblem naming the place."""
    text = _decode(data)
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except YamlProblem:
        raise
    except RecursionError:
        raise YamlProblem("nested too deeply to read") from None
    except (yaml.YAMLError, ConstructorError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem(f"{where}invalid YAML: {problem}") from None
    finally:
        loader.dispose()
