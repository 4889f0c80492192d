//! A backend-local cache of what an action needs: the subject's graph and
//! plan, its rules and hooks, and prepared statements kept across calls
//! (SPI_keepplan). Everything is dropped when forget.config_version moves
//! (configuration tables and DDL move it; see sql/schema.sql), so the cost of
//! reading the catalog and planning the statement is paid once per change,
//! not once per call.

use crate::catalog::{self, Rule, Subject};
use crate::errors::spi;
use crate::execute::Prepared;
use crate::model::Action;
use crate::render::{Mode, Rendered};
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A rendered statement with its kept plan.
pub struct Statement {
    pub rendered: Rendered,
    pub plan: OwnedPreparedStatement,
}

pub struct Entry {
    pub prepared: Prepared,
    pub rules: Vec<Rule>,
    /// event → hooked functions (qualified names)
    pub hooks: HashMap<String, Vec<String>>,
    statements: RefCell<HashMap<Mode, Rc<Statement>>>,
    rule_plans: RefCell<Option<Rc<Vec<(Rule, OwnedPreparedStatement)>>>>,
}

impl Entry {
    /// The rules' queries, each prepared once with $1 of the key's type,
    /// under the search_path it was declared with.
    pub fn rule_plans(&self) -> Rc<Vec<(Rule, OwnedPreparedStatement)>> {
        if let Some(p) = self.rule_plans.borrow().as_ref() {
            return p.clone();
        }
        let key_type = [pgrx::PgOid::from(pg_sys::Oid::from(
            self.prepared.subject.key_type_oid,
        ))];
        let plans: Vec<(Rule, OwnedPreparedStatement)> = self
            .rules
            .iter()
            .map(|rule| {
                let sql = format!(
                    "SELECT pg_catalog.count(*) FROM ({}) forget_rule",
                    rule.query
                );
                let plan = crate::execute::with_search_path(&rule.search_path, || {
                    Spi::connect(|client| spi(client.prepare(sql.as_str(), &key_type)).keep())
                });
                (rule.clone(), plan)
            })
            .collect();
        let plans = Rc::new(plans);
        *self.rule_plans.borrow_mut() = Some(plans.clone());
        plans
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
        let plan = crate::execute::with_search_path(&self.prepared.subject.search_path, || {
            Spi::connect(|client| spi(client.prepare_mut(rendered.sql.as_str(), &types)).keep())
        });
        let statement = Rc::new(Statement { rendered, plan });
        self.statements.borrow_mut().insert(mode, statement.clone());
        statement
    }
}

type Key = (String, Action);

thread_local! {
    static CACHE: RefCell<(i64, HashMap<Key, Rc<Entry>>)> = RefCell::new((i64::MIN, HashMap::new()));
}

fn config_version() -> i64 {
    spi(Spi::get_one::<i64>(
        "SELECT last_value FROM forget.config_version",
    ))
    .unwrap_or(0)
}

/// What `action` on `subject` needs, from the cache or built now.
pub fn entry(subject: Subject, action: Action) -> Rc<Entry> {
    let version = config_version();
    let key = (subject.name.clone(), action);
    let cached = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != version {
            *c = (version, HashMap::new());
        }
        c.1.get(&key).cloned()
    });
    if let Some(e) = cached {
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
    let entry = Rc::new(Entry {
        prepared: Prepared::new(subject, action),
        rules,
        hooks,
        statements: RefCell::default(),
        rule_plans: RefCell::default(),
    });
    CACHE.with(|c| c.borrow_mut().1.insert(key, entry.clone()));
    entry
}
