//! Column types: PostgreSQL's canonical spelling of a type name, and the
//! ones DSQL refuses as column types.

use pg_query::NodeEnum;
use pg_query::protobuf::TypeName;

use super::rules::{self, Refusal};

/// Refused as column types (canonical names), as observed in September
/// 2026. The ranges and `macaddr8` beyond `int4range`/`tsrange`/`macaddr`
/// are assumed to follow the observed ones.
const REFUSED: &[&str] = &[
    "money",
    "xml",
    "inet",
    "cidr",
    "macaddr",
    "macaddr8",
    "point",
    "line",
    "lseg",
    "box",
    "path",
    "polygon",
    "circle",
    "tsvector",
    "tsquery",
    "int4range",
    "int8range",
    "numrange",
    "tsrange",
    "tstzrange",
    "daterange",
    "bit",
    "bit varying",
    "pg_lsn",
];

/// The `serial` pseudo-types, which DSQL does not have.
const SERIALS: &[&str] = &[
    "serial",
    "serial2",
    "serial4",
    "serial8",
    "smallserial",
    "bigserial",
];

/// The last element of a (possibly schema-qualified) type name.
fn base_name(type_name: &TypeName) -> Option<&str> {
    match type_name.names.last()?.node.as_ref()? {
        NodeEnum::String(s) => Some(&s.sval),
        _ => None,
    }
}

/// PostgreSQL's canonical name (as `format_type` spells it), without
/// modifiers and array brackets.
pub(super) fn canonical(type_name: &TypeName) -> String {
    let name = base_name(type_name).unwrap_or_default();
    match name {
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "float4" => "real",
        "float8" => "double precision",
        "bool" => "boolean",
        "varchar" => "character varying",
        "bpchar" => "character",
        "varbit" => "bit varying",
        "timestamp" => "timestamp without time zone",
        "timestamptz" => "timestamp with time zone",
        "time" => "time without time zone",
        "timetz" => "time with time zone",
        other => other,
    }
    .to_owned()
}

/// Whether DSQL refuses `type_name` as a column type: a serial (42704, in
/// the spelling used) or a refused type (0A000, canonical spelling).
pub(super) fn refuse_column_type(type_name: &TypeName) -> Option<Refusal> {
    let name = base_name(type_name)?;
    if type_name.names.len() == 1 && SERIALS.contains(&name) {
        return rules::SERIAL.refuse_naming(name);
    }
    let canonical = canonical(type_name);
    if !type_name.array_bounds.is_empty() {
        return rules::DATATYPE.refuse_naming(&format!("{canonical}[]"));
    }
    if REFUSED.contains(&canonical.as_str()) {
        return rules::DATATYPE.refuse_naming(&canonical);
    }
    None
}

/// Whether the type is `bigint`.
pub(super) fn is_bigint(type_name: &TypeName) -> bool {
    canonical(type_name) == "bigint" && type_name.array_bounds.is_empty()
}
