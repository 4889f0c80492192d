//! A backend-local cache of what an action needs: the subject's graph and
//! plan, its rules and hooks, and prepared statements kept across calls
//! (SPI_keepplan). Everything is dropped when forget.config_version moves
//! (configuration tables and DDL move it; see sql/schema.sql) or PostgreSQL
//! invalidates what it depends on (invalidation.rs: a configuration change
//! committed or rolled back, a role or membership changed), so the cost of
//! reading the catalog and planning the statement is paid once per change,
//! not once per call.

use crate::catalog::{self, Rule, Subject};
use crate::errors::spi;
use crate::execute::Prepared;
use crate::model::{Action, Table};
use crate::render::{Mode, Rendered};
use crate::rules::RuleForm;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// A rendered statement with its kept plan. The action statements and the
/// export statement are the big ones (a CTE per table of the graph): a
/// backend keeps them within `forget.plan_cache_size`, dropping the least
/// recently used (see `fit_plan_cache`).
pub struct Statement {
    pub rendered: Rendered,
    pub plan: OwnedPreparedStatement,
    /// The kept plans of `rendered.first`, with their steps, in order.
    pub first: Vec<(usize, OwnedPreparedStatement)>,
    /// Whether it has run (its plan is built at the first run).
    ran: Cell<bool>,
    /// The memory its plan keeps, measured after the first run.
    bytes: Cell<usize>,
    /// When it last ran (a counter of runs in this backend).
    used: Cell<u64>,
}

impl Statement {
    fn new(
        rendered: Rendered,
        plan: OwnedPreparedStatement,
        first: Vec<(usize, OwnedPreparedStatement)>,
    ) -> Statement {
        Statement {
            rendered,
            plan,
            first,
            ran: Cell::default(),
            bytes: Cell::default(),
            used: Cell::default(),
        }
    }

    /// Call after each run: marks it recently used; after the first run,
    /// measures what its plan keeps, drops the least recently used other
    /// statements beyond forget.plan_cache_size, and hands the memory the
    /// run freed back to the system.
    pub fn after_run(&self) {
        self.used.set(RUNS.with(|r| {
            r.set(r.get() + 1);
            r.get()
        }));
        if self.ran.replace(true) {
            return;
        }
        let first = self.rendered.first.iter().map(|(_, sql)| sql.as_str());
        self.bytes.set(
            std::iter::once(self.rendered.sql.as_str())
                .chain(first)
                .map(crate::memory::kept_plan_bytes)
                .sum(),
        );
        fit_plan_cache();
        crate::memory::release_freed();
    }
}

thread_local! {
    static RUNS: Cell<u64> = const { Cell::new(0) };
}

pub type RulePlans = Rc<Vec<(Rule, OwnedPreparedStatement)>>;

pub struct Entry {
    pub prepared: Prepared,
    /// Tables of the graph and hook functions owned by roles the subject
    /// does not trust (see catalog::untrusted).
    pub untrusted: Vec<(String, String)>,
    pub rules: Vec<Rule>,
    /// event → hooked functions (qualified names)
    pub hooks: HashMap<String, Vec<String>>,
    statements: RefCell<HashMap<Mode, Rc<Statement>>>,
    rule_plans: RefCell<HashMap<RuleForm, RulePlans>>,
    lock_plans: RefCell<HashMap<bool, Rc<OwnedPreparedStatement>>>,
    export_plan: RefCell<Option<Rc<Statement>>>,
    /// Kinds of declared SQL verified still bound (bit per binding::Kind).
    bound: std::cell::Cell<u8>,
}

impl Entry {
    /// The subject's key as its type prints it, the row locked FOR UPDATE
    /// when asked (a concurrent insert of a referencing row waits for us, and
    /// one that got there first is seen by the rules). P0002 if absent.
    pub fn lock(&self, key: &str, for_update: bool) -> String {
        let s = &self.prepared.subject;
        let cached = self.lock_plans.borrow().get(&for_update).cloned();
        let plan = cached.unwrap_or_else(|| {
            let table = &self.prepared.tables[&s.table];
            let sql = crate::execute::lock_sql(s, table, for_update);
            let plan = Spi::connect(|client| {
                spi(client.prepare_mut(sql.as_str(), &[pgrx::PgOid::from(pg_sys::TEXTOID)])).keep()
            });
            let plan = Rc::new(plan);
            self.lock_plans
                .borrow_mut()
                .insert(for_update, plan.clone());
            plan
        });
        // Without the lock, read-only: no transaction id, fine on a standby.
        let found = crate::identity::as_subject(s, None, || {
            let first = |t: pgrx::spi::SpiTupleTable| t.first().get_one::<String>().ok().flatten();
            if for_update {
                Spi::connect_mut(|client| {
                    first(spi(client.update(plan.as_ref(), Some(1), &[key.into()])))
                })
            } else {
                Spi::connect(|client| {
                    first(spi(client.select(plan.as_ref(), Some(1), &[key.into()])))
                })
            }
        });
        let key = found.unwrap_or_else(|| crate::errors::not_found(&s.name, key));
        crate::execute::require_visible_to_caller(s, &self.prepared.tables[&s.table], &key);
        key
    }

    /// The rules' queries in one form, each prepared once under the
    /// search_path it was declared with.
    pub fn rule_plans(&self, form: RuleForm) -> RulePlans {
        if let Some(p) = self.rule_plans.borrow().get(&form) {
            return p.clone();
        }
        let plans: Vec<(Rule, OwnedPreparedStatement)> = self
            .rules
            .iter()
            .map(|rule| {
                let (sql, param) =
                    crate::rules::statement(form, &rule.query, &self.prepared.subject);
                let plan = crate::identity::with_search_path(&rule.search_path, || {
                    Spi::connect(|client| {
                        spi(client.prepare(sql.as_str(), &[pgrx::PgOid::from(param)])).keep()
                    })
                });
                (rule.clone(), plan)
            })
            .collect();
        let plans = Rc::new(plans);
        self.rule_plans.borrow_mut().insert(form, plans.clone());
        plans
    }

    /// 55000 when declared SQL of these `kinds` that this action runs no
    /// longer means what it meant when declared (binding.rs); checked once
    /// per configuration version.
    pub fn require_bound(&self, kinds: &[crate::binding::Kind]) {
        let wanted = kinds.iter().fold(0u8, |m, k| m | k.bit());
        if self.bound.get() & wanted == wanted {
            return;
        }
        crate::binding::verify_subject(
            &self.prepared.subject,
            &self.prepared.graph.tables(),
            self.prepared.plan.action.name(),
            kinds,
        );
        self.bound.set(self.bound.get() | wanted);
    }

    /// 42501 when the action would run code of an untrusted role.
    pub fn require_trusted(&self) {
        catalog::require_trusted(&self.prepared.subject, &self.untrusted);
    }

    pub fn hooks(&self, event: &str) -> &[String] {
        self.hooks.get(event).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The statement for a mode, prepared once under the subject's
    /// search_path (DBA-written masks and conditions resolve with it).
    pub fn statement(&self, mode: Mode) -> Rc<Statement> {
        if let Some(s) = self.statements.borrow().get(&mode) {
            return s.clone();
        }
        let rendered = self.prepared.render(mode);
        let types = [pg_sys::TEXTARRAYOID, pg_sys::TEXTOID, pg_sys::INT8OID].map(pgrx::PgOid::from);
        let prepare = |sql: &str| {
            crate::identity::with_search_path(&self.prepared.subject.search_path, || {
                Spi::connect(|client| spi(client.prepare_mut(sql, &types)).keep())
            })
        };
        let plan = prepare(&rendered.sql);
        let first = rendered
            .first
            .iter()
            .map(|(step, sql)| (*step, prepare(sql)))
            .collect();
        let statement = Rc::new(Statement::new(rendered, plan, first));
        self.statements.borrow_mut().insert(mode, statement.clone());
        statement
    }

    /// The export statement (keys $1, text[]), prepared once like
    /// `statement`: on a wide graph planning it costs far more than running it.
    pub fn export_statement(&self) -> Rc<Statement> {
        if let Some(statement) = self.export_plan.borrow().clone() {
            return statement;
        }
        let p = &self.prepared;
        let masks = catalog::masks(Action::Export);
        let sql =
            crate::render::export_statement(&p.plan, &p.graph, &p.tables, &p.subject_sql(), &masks);
        let types = [pgrx::PgOid::from(pg_sys::TEXTARRAYOID)];
        let plan = crate::identity::with_search_path(&p.subject.search_path, || {
            Spi::connect(|client| spi(client.prepare_mut(sql.as_str(), &types)).keep())
        });
        let rendered = Rendered {
            sql,
            steps: Vec::new(),
            first: Vec::new(),
        };
        let statement = Rc::new(Statement::new(rendered, plan, Vec::new()));
        *self.export_plan.borrow_mut() = Some(statement.clone());
        statement
    }

    /// The big statements this entry keeps, with a way to drop each.
    fn kept_statements(&self) -> Vec<(Rc<Statement>, Option<Mode>)> {
        let mut kept: Vec<(Rc<Statement>, Option<Mode>)> = self
            .statements
            .borrow()
            .iter()
            .map(|(m, s)| (s.clone(), Some(*m)))
            .collect();
        kept.extend(self.export_plan.borrow().clone().map(|s| (s, None)));
        kept
    }

    fn drop_statement(&self, mode: Option<Mode>) {
        match mode {
            Some(mode) => {
                self.statements.borrow_mut().remove(&mode);
            }
            None => *self.export_plan.borrow_mut() = None,
        }
    }
}

/// Keeps the memory of the backend's kept action and export statements
/// within forget.plan_cache_size (default 40MB): drops the least recently
/// used ones (never the one that just ran), which are planned again when
/// next needed. On a small graph a statement keeps well under 1 MB, so
/// dozens fit; on a graph of 350 tables it keeps about 16 MB (two fit).
fn fit_plan_cache() {
    let budget = crate::memory::plan_cache_size();
    let entries: Vec<Rc<Entry>> = CACHE.with(|c| c.borrow().entries.values().cloned().collect());
    let mut kept: Vec<(Rc<Entry>, Rc<Statement>, Option<Mode>)> = entries
        .iter()
        .flat_map(|e| {
            e.kept_statements()
                .into_iter()
                .map(move |(s, m)| (e.clone(), s, m))
        })
        .collect();
    let mut total: usize = kept.iter().map(|(_, s, _)| s.bytes.get()).sum();
    // Oldest last, so that pop() gives the least recently used.
    kept.sort_by_key(|(_, s, _)| std::cmp::Reverse(s.used.get()));
    let newest = kept.first().map(|(_, s, _)| s.used.get());
    while total > budget {
        match kept.pop() {
            Some((entry, statement, mode)) if Some(statement.used.get()) != newest => {
                total -= statement.bytes.get();
                entry.drop_statement(mode);
            }
            _ => break,
        }
    }
}

type Key = (String, Action);

#[derive(Default)]
struct Cache {
    version: i64,
    /// invalidation::epoch() when the cache was emptied.
    epoch: u64,
    /// The transaction that emptied it, when it reads in one snapshot
    /// (REPEATABLE READ, SERIALIZABLE): the cache lives as long as it.
    snapshot_xact: Option<u32>,
    subjects: Option<Vec<Subject>>,
    tables: HashMap<u32, Table>,
    /// Statements built from the configuration, by the caller's name for them.
    statements: HashMap<String, Rc<OwnedPreparedStatement>>,
    /// deactivate's and reactivate's hooks found trusted, by subject and action.
    trusted_hooks: HashMap<(String, String), Rc<Hooks>>,
    entries: HashMap<Key, Rc<Entry>>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache { version: i64::MIN, ..Cache::default() });
}

thread_local! {
    static KEPT: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> = RefCell::default();
}

/// One of the extension's own statements (qualified names, its own tables),
/// prepared once per backend: every action runs a few of them, and parsing
/// and planning each call would cost more than running them. PostgreSQL
/// re-plans a kept statement by itself when what it reads changes.
pub fn kept(sql: &'static str, types: &[pg_sys::Oid]) -> Rc<OwnedPreparedStatement> {
    if let Some(plan) = KEPT.with(|k| k.borrow().get(sql).cloned()) {
        return plan;
    }
    let plan = prepare_kept(sql, types);
    KEPT.with(|k| k.borrow_mut().insert(sql, plan.clone()));
    plan
}

fn prepare_kept(sql: &str, types: &[pg_sys::Oid]) -> Rc<OwnedPreparedStatement> {
    let types: Vec<pgrx::PgOid> = types.iter().map(|t| pgrx::PgOid::from(*t)).collect();
    Rc::new(Spi::connect(|client| {
        spi(client.prepare_mut(sql, &types)).keep()
    }))
}

/// forget.config_version's value, and its relation (whose invalidation
/// empties the cache).
fn config_version() -> (i64, pg_sys::Oid) {
    let plan = kept(
        "SELECT last_value, 'forget.config_version'::pg_catalog.regclass::pg_catalog.oid FROM forget.config_version",
        &[],
    );
    Spi::connect(|client| {
        let row = spi(client.select(plan.as_ref(), Some(1), &[])).first();
        (
            spi(row.get::<i64>(1)).unwrap_or(0),
            spi(row.get::<pg_sys::Oid>(2)).unwrap_or(pg_sys::InvalidOid),
        )
    })
}

/// Drops everything when forget.config_version has moved or an
/// invalidation came (invalidation.rs), or when it was filled in an earlier
/// transaction that read the catalog in its own snapshot (REPEATABLE READ or
/// SERIALIZABLE: what it saw may have been old already). One query.
fn refresh() {
    // Read first (it takes in pending invalidations): one that comes while
    // the cache fills makes the next call empty it again.
    let epoch = crate::invalidation::epoch();
    let (version, marker) = config_version();
    crate::invalidation::watch(marker);
    let snapshot_xact = unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
        .then(local_transaction);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let old_snapshot = c.snapshot_xact.is_some_and(|x| Some(x) != snapshot_xact);
        if c.version != version || c.epoch != epoch || old_snapshot {
            crate::invalidation::forget_watched();
            *c = Cache {
                version,
                epoch,
                snapshot_xact,
                ..Cache::default()
            };
        }
    });
}

fn subjects() -> Vec<Subject> {
    let cached = CACHE.with(|c| c.borrow().subjects.clone());
    cached.unwrap_or_else(|| {
        let all = catalog::subjects();
        CACHE.with(|c| c.borrow_mut().subjects = Some(all.clone()));
        all
    })
}

/// The subject named (or the only one; 22023 otherwise), from the cache.
pub fn subject(name: Option<&str>) -> Subject {
    refresh();
    catalog::pick(subjects(), name)
}

/// A table's columns and primary key, from the cache.
pub fn table(oid: u32) -> Table {
    refresh();
    if let Some(t) = CACHE.with(|c| c.borrow().tables.get(&oid).cloned()) {
        return t;
    }
    let t = crate::config::table(oid);
    CACHE.with(|c| c.borrow_mut().tables.insert(oid, t.clone()));
    t
}

/// A statement built from the configuration (`build` runs only when it is
/// not cached), prepared once and kept until the configuration changes.
/// `name` must say everything the SQL depends on (the subject, say).
pub fn statement(
    name: String,
    types: &[pg_sys::Oid],
    build: impl FnOnce() -> String,
) -> Rc<OwnedPreparedStatement> {
    refresh();
    if let Some(plan) = CACHE.with(|c| c.borrow().statements.get(&name).cloned()) {
        return plan;
    }
    let plan = prepare_kept(&build(), types);
    CACHE.with(|c| c.borrow_mut().statements.insert(name, plan.clone()));
    plan
}

/// The hook functions (qualified names) of one action's `before_` and
/// `after_` events.
pub struct Hooks {
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// The hooks of `action` (`deactivate` or `reactivate`) on `subject`,
/// once they and the subject table were found to belong to roles the
/// subject trusts (42501 otherwise, checked again at every call until they
/// are). The verdict is kept like everything here: until the
/// configuration, a table or a role changes (invalidation.rs).
pub fn trusted_hooks(subject: &Subject, action: &str) -> Rc<Hooks> {
    refresh();
    let key = (subject.name.clone(), action.to_string());
    if let Some(h) = CACHE.with(|c| c.borrow().trusted_hooks.get(&key).cloned()) {
        return h;
    }
    let hooks = Hooks {
        before: catalog::hooks(&format!("before_{action}")),
        after: catalog::hooks(&format!("after_{action}")),
    };
    let functions: Vec<String> = hooks.before.iter().chain(&hooks.after).cloned().collect();
    watch_owners(&[subject.table], &functions);
    catalog::require_trusted(
        subject,
        &catalog::untrusted(subject, &[subject.table], &functions),
    );
    let hooks = Rc::new(hooks);
    CACHE.with(|c| c.borrow_mut().trusted_hooks.insert(key, hooks.clone()));
    hooks
}

/// What `action` on the subject named (or the only one) needs, from the
/// cache or built now. One query when nothing changed: the version.
pub fn entry(subject: Option<&str>, action: Action) -> Rc<Entry> {
    let subject = self::subject(subject);
    let key = (subject.name.clone(), action);
    if let Some(e) = CACHE.with(|c| c.borrow().entries.get(&key).cloned()) {
        return e;
    }
    let rules = catalog::rules(&subject.name, action.name());
    let hooks = ["before_", "after_"]
        .iter()
        .map(|p| {
            let event = format!("{p}{}", action.name());
            let functions = catalog::hooks(&event);
            (event, functions)
        })
        .collect();
    let prepared = Prepared::new(subject, action);
    let functions: Vec<String> = hooks_of(&hooks);
    watch_owners(&prepared.graph.tables(), &functions);
    let untrusted = catalog::untrusted(&prepared.subject, &prepared.graph.tables(), &functions);
    let entry = Rc::new(Entry {
        prepared,
        untrusted,
        rules,
        hooks,
        statements: RefCell::default(),
        rule_plans: RefCell::default(),
        lock_plans: RefCell::default(),
        export_plan: RefCell::default(),
        bound: std::cell::Cell::new(0),
    });
    CACHE.with(|c| c.borrow_mut().entries.insert(key, entry.clone()));
    entry
}

/// A change of these tables (and their inheritors) or hooks empties the
/// cache: their owners are about to be judged (invalidation.rs).
fn watch_owners(tables: &[u32], hooks: &[String]) {
    let (relations, functions) = catalog::owned_objects(tables, hooks, &[], &[]);
    crate::invalidation::watch_objects(&relations, &functions);
}

fn hooks_of(hooks: &HashMap<String, Vec<String>>) -> Vec<String> {
    hooks.values().flatten().cloned().collect()
}

thread_local! {
    /// What the DDL event triggers note between a command's start, its
    /// drops and its end (forget_internal._ddl_started, _ddl_dropped,
    /// _ddl_changed): in the backend, out of every role's reach (a setting
    /// could be pre-set by the role running the DDL, to skip a bump).
    static DDL_NOTES: std::cell::RefCell<std::collections::HashMap<String, (u32, String)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The backend's local transaction id: a note lives as long as the
/// transaction that wrote it (as a setting made with SET LOCAL would).
fn local_transaction() -> u32 {
    unsafe { (*pg_sys::MyProc).lxid }
}

/// Notes `value` (NULL: forgets it) under `name` for the DDL event triggers.
#[pg_extern(schema = "forget_internal", name = "_ddl_note", volatile)]
fn ddl_note(name: &str, value: Option<&str>) {
    DDL_NOTES.with(|n| match value {
        Some(v) => {
            n.borrow_mut()
                .insert(name.to_string(), (local_transaction(), v.to_string()));
        }
        None => {
            n.borrow_mut().remove(name);
        }
    });
}

/// What `_ddl_note` noted under `name`, if anything.
#[pg_extern(schema = "forget_internal", name = "_ddl_noted", volatile)]
fn ddl_noted(name: &str) -> Option<String> {
    DDL_NOTES.with(|n| {
        n.borrow()
            .get(name)
            .filter(|(xact, _)| *xact == local_transaction())
            .map(|(_, v)| v.clone())
    })
}
