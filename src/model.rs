//! Plain values shared by the pure parts (graph, plan, render): what the
//! catalog says about tables, references, policies and masks. No SPI here.

use std::collections::HashMap;

/// A relation's object id, as PostgreSQL numbers it.
pub type Oid = u32;

/// What the caller asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Delete,
    Anonymize,
    Minimize,
    /// Read every reached row, change nothing.
    Export,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Delete => "delete",
            Action::Anonymize => "anonymize",
            Action::Minimize => "minimize",
            Action::Export => "export",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "delete" => Some(Action::Delete),
            "anonymize" => Some(Action::Anonymize),
            "minimize" => Some(Action::Minimize),
            _ => None,
        }
    }
}

/// What an action does to the rows reached through one edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    Delete,
    Nullify,
    Anonymize,
    Keep,
}

impl Policy {
    pub fn parse(text: &str) -> Option<Policy> {
        match text {
            "delete" => Some(Policy::Delete),
            "nullify" => Some(Policy::Nullify),
            "anonymize" => Some(Policy::Anonymize),
            "keep" => Some(Policy::Keep),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::Delete => "delete",
            Policy::Nullify => "nullify",
            Policy::Anonymize => "anonymize",
            Policy::Keep => "keep",
        }
    }
}

/// A foreign key's ON DELETE rule (pg_constraint.confdeltype).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDelete {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl OnDelete {
    pub fn from_confdeltype(code: &str) -> OnDelete {
        match code {
            "r" => OnDelete::Restrict,
            "c" => OnDelete::Cascade,
            "n" => OnDelete::SetNull,
            "d" => OnDelete::SetDefault,
            _ => OnDelete::NoAction,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    /// format_type() of the column, usable in a cast.
    pub type_sql: String,
    pub not_null: bool,
    /// A STORED generated column: PostgreSQL computes it, nobody writes it.
    pub generated: bool,
    /// Of a string type (typcategory 'S': text, varchar, char, name, and
    /// domains over them): a value cast from it to another type is parsed.
    pub string: bool,
    /// The equality operator of its type's default btree operator class
    /// (`public.=` for citext), when it is not in pg_catalog: the equality
    /// ON DELETE CASCADE and unique indexes use, where `pg_catalog.=` would
    /// pick another (text's, case-sensitive, for citext). Operator classes
    /// are created by superusers only.
    pub equality: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub oid: Oid,
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
    /// Primary key columns (empty without one): how undo data finds a row again.
    pub primary_key: Vec<String>,
    /// Partitioned (relkind 'p'): its rows live in its partitions, which all
    /// have its columns.
    pub partitioned: bool,
    /// Row level security is enabled on it (relrowsecurity).
    pub row_security: bool,
    /// Its rewrite rules ON DELETE and ON UPDATE (pg_rewrite): a DELETE or
    /// UPDATE on it may do something else (DO INSTEAD), so an action
    /// refuses to do that to it (execute::refuse_rewritten).
    pub rules: Rewritten,
    /// Tables that inherit from it (INHERITS, at any depth; not partitions):
    /// reading it reads their rows too, and they may add columns of their own.
    pub inheritors: Vec<Oid>,
    /// A partition or an inheritor itself: its rows are also read through
    /// its ancestors.
    pub descendant: bool,
    /// The partitioned table at the top of its partition tree (itself when
    /// it is not a partition).
    pub partition_root: Oid,
}

impl Table {
    /// Rows read through it may live in other relations (partitions or
    /// inheritors), where a ctid means another row: such rows are addressed
    /// by (tableoid, ctid).
    pub fn has_descendants(&self) -> bool {
        self.partitioned || !self.inheritors.is_empty()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// schema.table as a JSON key or message text (not for SQL).
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// Which statements on a table its rewrite rules change.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rewritten {
    pub delete: bool,
    pub update: bool,
}

/// Where a reference between two tables comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    ForeignKey {
        name: String,
        on_delete: OnDelete,
        /// PostgreSQL's clone of a foreign key that references a partitioned
        /// table, on one of its partitions (pg_constraint.conparentid): the
        /// same rule, applied from that partition's rows.
        cloned: bool,
    },
    /// `array`: the child column is an array of the parent column's type
    /// (`invitee_ids bigint[]`): a row belongs to every parent whose value
    /// the array contains.
    Link { id: i64, array: bool },
}

/// Rows of `child` whose `child_cols` equal `parent_cols` of a `parent` row
/// (and satisfy `condition`) belong to that parent row.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    pub child: Oid,
    pub child_cols: Vec<String>,
    pub parent: Oid,
    pub parent_cols: Vec<String>,
    pub origin: Origin,
    /// An extra predicate on the child row (declared links only).
    pub condition: Option<String>,
}

impl Reference {
    pub fn is_link(&self) -> bool {
        matches!(self.origin, Origin::Link { .. })
    }
}

/// Explicit policies for one action: (referencing table, column or None for
/// every edge of the table) → policy.
#[derive(Clone, Debug, Default)]
pub struct Policies {
    pub by_edge: HashMap<(Oid, Option<String>), Policy>,
}

impl Policies {
    /// The explicit policy of an edge leaving `table` through `columns`.
    pub fn explicit(&self, table: Oid, columns: &[String]) -> Option<Policy> {
        columns
            .iter()
            .find_map(|c| self.by_edge.get(&(table, Some(c.clone()))))
            .or_else(|| self.by_edge.get(&(table, None)))
            .copied()
    }
}

/// Masks for one action: table → [(column, SQL expression)].
#[derive(Clone, Debug, Default)]
pub struct Masks {
    pub by_table: HashMap<Oid, Vec<(String, String)>>,
}

impl Masks {
    pub fn for_table(&self, table: Oid) -> &[(String, String)] {
        self.by_table.get(&table).map(Vec::as_slice).unwrap_or(&[])
    }
}
