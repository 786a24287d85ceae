"""What a raw CTR file looks like: its columns, which is the label, which are numeric or categorical."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path


class DataFormatError(ValueError):
    """The input is not in the expected format (raised with the file name and what was expected)."""


@dataclass(frozen=True)
class Schema:
    """Column layout of a delimited text file (or a Parquet file, with ``delimiter`` unused).

    ``columns`` are all columns in file order; ``label`` is one of them (empty: unlabelled rows, read
    with label 0, see :meth:`without_label`); ``numeric``
    columns hold integers (empty = missing) and are bucketed as Criteo's are;
    ``categorical`` columns are hashed strings (empty = missing); ``drop`` are ignored;
    ``derived`` names special features computed from a column (Avazu's ``hour``).
    """

    name: str
    columns: tuple[str, ...]
    label: str
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    delimiter: str = ","
    header: bool = True
    derived: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = {*([self.label] if self.label else []), *self.numeric, *self.categorical, *self.drop, *self.derived}
        missing = known - set(self.columns)
        if missing:
            raise DataFormatError(f"schema {self.name!r}: columns {sorted(missing)} are not in its column list")
        if len(self.delimiter) != 1:
            raise DataFormatError(f"schema {self.name!r}: delimiter must be one character, got {self.delimiter!r}")

    def without_label(self) -> Schema:
        """The same layout without the label column (rows to predict): ``label`` is empty, rows read as label 0."""
        return replace(self, columns=tuple(c for c in self.columns if c != self.label), label="")

    @property
    def feature_names(self) -> list[str]:
        """Names of the model's fields, in order: numeric, categorical, then derived features."""
        names = [*self.numeric, *self.categorical]
        for col, kind in self.derived.items():
            if kind == "avazu_hour":
                names += [f"{col}_of_day", f"{col}_weekday", f"{col}_weekend"]
        return names

    @classmethod
    def from_json(cls, path: str | Path) -> Schema:
        """Load a schema for the generic reader, e.g.
        ``{"columns": [...], "label": "y", "numeric": [...], "categorical": [...], "delimiter": ","}``.
        """
        path = Path(path)
        try:
            spec = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataFormatError(f"{path}: cannot read schema JSON: {exc}") from None
        if not isinstance(spec, dict):
            raise DataFormatError(f"{path}: a schema is a JSON object, found {type(spec).__name__}")
        allowed = {"columns", "label", "numeric", "categorical", "drop", "delimiter", "header", "name"}
        unknown = set(spec) - allowed
        for key in ("columns", "numeric", "categorical", "drop"):
            value = spec.get(key, [])
            if not (isinstance(value, list) and all(isinstance(c, str) and c for c in value)):
                raise DataFormatError(f"{path}: {key!r} should be a list of column names")
        if len(set(spec.get("columns", []))) != len(spec.get("columns", [])):
            raise DataFormatError(f"{path}: 'columns' names a column twice")
        for key in ("label", "delimiter", "name"):
            if key in spec and not isinstance(spec[key], str):
                raise DataFormatError(f"{path}: {key!r} should be a string")
        if unknown or "columns" not in spec or "label" not in spec:
            raise DataFormatError(f"{path}: schema needs 'columns' and 'label'; allowed keys {sorted(allowed)}, "
                                  f"unknown {sorted(unknown)}")
        return cls(name=spec.get("name", path.stem), columns=tuple(spec["columns"]), label=spec["label"],
                   numeric=tuple(spec.get("numeric", ())), categorical=tuple(spec.get("categorical", ())),
                   drop=tuple(spec.get("drop", ())), delimiter=spec.get("delimiter", ","),
                   header=bool(spec.get("header", True)))


CRITEO = Schema(
    name="criteo",
    columns=("label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))),
    label="label",
    numeric=tuple(f"I{i}" for i in range(1, 14)),
    categorical=tuple(f"C{i}" for i in range(1, 27)),
    delimiter="\t",
    header=False,
)

_AVAZU_COLUMNS = ("id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain", "site_category", "app_id",
                  "app_domain", "app_category", "device_id", "device_ip", "device_model", "device_type",
                  "device_conn_type", "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21")

AVAZU = Schema(
    name="avazu",
    columns=_AVAZU_COLUMNS,
    label="click",
    categorical=_AVAZU_COLUMNS[3:],
    drop=("id",),
    delimiter=",",
    header=True,
    derived={"hour": "avazu_hour"},
)

SCHEMAS = {"criteo": CRITEO, "avazu": AVAZU}
