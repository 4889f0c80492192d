//! Planning an action over a subject graph. Pure: no SPI.
//!
//! Every reached row gets one or more *fates*: deleted, kept, masked, or one
//! of its references nullified. A row's fate comes from the edge that reached
//! it and from what happens to the parent row it was reached through:
//! - below a deleted parent row, the edge's explicit policy for the action,
//!   or else the foreign key's own ON DELETE rule (SET NULL nullifies,
//!   everything else deletes; declared links and owned rows delete);
//! - below a surviving parent row (anonymize, minimize), the edge's explicit
//!   policy, or else keep; a delete never looks below rows it keeps.
//! When one row gets several fates, delete wins; masks and nullifications
//! combine. Tables where nothing would happen, anywhere below, are pruned.

use crate::graph::{Edge, Graph};
use crate::model::{Action, Masks, OnDelete, Origin, Policies, Policy};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fate {
    Delete,
    Keep,
    Mask,
    /// The references of the given edge are set to NULL.
    Nullify(usize),
    /// Kept below a deleted (or destroyed) parent for the business (policy
    /// `anonymize`): masked with the anonymize masks, and the references of
    /// the given edge set to NULL.
    MaskNullify(usize),
}

impl Fate {
    /// The tag carried by a reached row in the generated SQL.
    pub fn tag(self) -> String {
        match self {
            Fate::Delete => "d".into(),
            Fate::Keep => "k".into(),
            Fate::Mask => "m".into(),
            Fate::Nullify(edge) => format!("n{edge}"),
            Fate::MaskNullify(edge) => format!("a{edge}"),
        }
    }
}

/// How rows of a child table are reached through one edge.
#[derive(Clone, Debug, PartialEq)]
pub struct Branch {
    pub edge: usize,
    /// Fate of rows below a deleted parent row; None: not followed.
    pub below_deleted: Option<Fate>,
    /// Fate of rows below a surviving parent row; None: not followed.
    pub below_surviving: Option<Fate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Delete,
    Nullify,
    Anonymize,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Delete => "delete",
            Operation::Nullify => "nullify",
            Operation::Anonymize => "anonymize",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodePlan {
    pub node: usize,
    /// Edges from other tables that reach this one.
    pub branches: Vec<Branch>,
    /// Self-references, followed recursively.
    pub recursive: Vec<Branch>,
    pub fates: BTreeSet<Fate>,
    /// Columns that edges leaving this table match against.
    pub exposed: Vec<String>,
    /// (column, expression) applied to rows whose fate is Mask.
    pub masks: Vec<(String, String)>,
}

impl NodePlan {
    pub fn deletes(&self) -> bool {
        self.fates.contains(&Fate::Delete)
    }

    pub fn nullified_edges(&self) -> Vec<usize> {
        self.fates
            .iter()
            .filter_map(|f| match f {
                Fate::Nullify(e) => Some(*e),
                _ => None,
            })
            .collect()
    }

    pub fn masks_rows(&self) -> bool {
        self.fates.contains(&Fate::Mask) || !self.kept_unlinked_edges().is_empty()
    }

    /// Edges whose rows are masked and unlinked (Fate::MaskNullify).
    pub fn kept_unlinked_edges(&self) -> Vec<usize> {
        self.fates
            .iter()
            .filter_map(|f| match f {
                Fate::MaskNullify(e) => Some(*e),
                _ => None,
            })
            .collect()
    }

    /// The fate tags whose rows the anonymize step changes.
    pub fn masked_tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        if self.fates.contains(&Fate::Mask) {
            tags.push(Fate::Mask.tag());
        }
        tags.extend(
            self.kept_unlinked_edges()
                .into_iter()
                .map(|e| Fate::MaskNullify(e).tag()),
        );
        tags
    }

    pub fn operations(&self) -> Vec<Operation> {
        let mut ops = Vec::new();
        if self.deletes() {
            ops.push(Operation::Delete);
        }
        if !self.nullified_edges().is_empty() {
            ops.push(Operation::Nullify);
        }
        if self.masks_rows() {
            ops.push(Operation::Anonymize);
        }
        ops
    }
}

/// Columns of the subject row set besides masks (anonymize, minimize).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubjectMarks {
    /// (active column, its type): set to the subject's inactive value.
    pub deactivate: Option<(String, String)>,
    /// Timestamp column set to now() when minimizing.
    pub minimized_column: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub action: Action,
    /// Included tables, parents first; nodes[0] is the subject table.
    pub nodes: Vec<NodePlan>,
    pub marks: SubjectMarks,
}

impl Plan {
    /// (node, operation) in execution-report order.
    pub fn steps(&self) -> Vec<(usize, Operation)> {
        self.nodes
            .iter()
            .flat_map(|n| n.operations().into_iter().map(move |op| (n.node, op)))
            .collect()
    }

    pub fn node(&self, node: usize) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.node == node)
    }
}

/// What a plan needs to know besides the graph.
pub struct Settings<'a> {
    pub action: Action,
    pub policies: &'a Policies,
    pub masks: &'a Masks,
    pub marks: SubjectMarks,
}

pub fn plan(graph: &Graph, settings: &Settings) -> Plan {
    let fates = reachable_fates(graph, settings);
    let useful = useful_nodes(graph, settings.action, &fates);
    let nodes = (0..graph.nodes.len())
        .filter(|n| useful[*n])
        .map(|n| node_plan(graph, settings, &fates, &useful, n))
        .collect();
    Plan {
        action: settings.action,
        nodes,
        marks: settings.marks.clone(),
    }
}

/// What an action does to the subject rows themselves.
pub fn root_fate(action: Action) -> Fate {
    match action {
        Action::Delete => Fate::Delete,
        Action::Anonymize | Action::Minimize => Fate::Mask,
        Action::Export => Fate::Keep,
    }
}

/// The branch of an edge: what happens below deleted and surviving parents.
pub fn branch(edge_index: usize, edge: &Edge, graph: &Graph, s: &Settings) -> Branch {
    let _ = graph;
    if s.action == Action::Export {
        return Branch {
            edge: edge_index,
            below_deleted: None,
            below_surviving: Some(Fate::Keep),
        };
    }
    let (table, cols) = edge.referencing();
    let explicit = s.policies.explicit(table, cols);
    let child_table = edge_child_table(edge);
    let to_fate = |p: Policy| {
        policy_fate(
            p,
            edge_index,
            edge,
            !s.masks.for_table(child_table).is_empty(),
        )
    };
    // Policy anonymize below a deleted parent keeps the row masked and cuts
    // its reference (which would otherwise fail the parent's delete).
    let below_deleted = Some(match explicit.unwrap_or_else(|| delete_default(edge)) {
        Policy::Anonymize if edge.can_nullify() => Fate::MaskNullify(edge_index),
        p => to_fate(p),
    });
    let below_surviving = match s.action {
        Action::Delete => None,
        _ => Some(to_fate(explicit.unwrap_or(Policy::Keep))),
    };
    Branch {
        edge: edge_index,
        below_deleted,
        below_surviving,
    }
}

fn edge_child_table(edge: &Edge) -> u32 {
    if edge.owned {
        edge.reference.parent
    } else {
        edge.reference.child
    }
}

/// The delete action's default: follow the foreign key's ON DELETE rule; a
/// row that lists the subject in an array (an invitation of several people)
/// is kept and loses that element (nullify on an array link).
pub fn delete_default(edge: &Edge) -> Policy {
    match &edge.reference.origin {
        Origin::Link { array: true, .. } if !edge.owned => Policy::Nullify,
        Origin::ForeignKey {
            on_delete: OnDelete::SetNull,
            ..
        } if !edge.owned => Policy::Nullify,
        _ => Policy::Delete,
    }
}

/// The policy an edge has for an action: explicit, or the action's default
/// (a delete follows the foreign key's ON DELETE rule, the others keep).
pub fn effective_policy(edge: &Edge, action: Action, policies: &Policies) -> Policy {
    let (table, cols) = edge.referencing();
    match (policies.explicit(table, cols), action) {
        (Some(p), _) => p,
        (None, Action::Delete) => delete_default(edge),
        (None, _) => Policy::Keep,
    }
}

fn policy_fate(policy: Policy, edge_index: usize, edge: &Edge, has_masks: bool) -> Fate {
    match policy {
        Policy::Delete => Fate::Delete,
        Policy::Keep => Fate::Keep,
        Policy::Anonymize if has_masks => Fate::Mask,
        Policy::Anonymize => Fate::Keep,
        Policy::Nullify if edge.can_nullify() => Fate::Nullify(edge_index),
        Policy::Nullify => Fate::Keep,
    }
}

/// Fates each node's rows can get, in topological order; self-references
/// are followed until nothing new appears.
fn reachable_fates(graph: &Graph, s: &Settings) -> Vec<BTreeSet<Fate>> {
    let mut fates: Vec<BTreeSet<Fate>> = vec![BTreeSet::new(); graph.nodes.len()];
    fates[0].insert(root_fate(s.action));
    for node in 0..graph.nodes.len() {
        for (i, e) in graph.incoming(node).filter(|(_, e)| !e.is_self_reference()) {
            let b = branch(i, e, graph, s);
            let parent = fates[e.parent].clone();
            fates[node].extend(fates_below(&b, &parent));
        }
        loop {
            let before = fates[node].len();
            for (i, e) in graph.incoming(node).filter(|(_, e)| e.is_self_reference()) {
                let b = branch(i, e, graph, s);
                let own = fates[node].clone();
                fates[node].extend(fates_below(&b, &own));
            }
            if fates[node].len() == before {
                break;
            }
        }
    }
    fates
}

/// The fates a branch gives to child rows, given the parent's fates.
pub fn fates_below(b: &Branch, parent: &BTreeSet<Fate>) -> Vec<Fate> {
    let mut out = Vec::new();
    if parent.contains(&Fate::Delete) {
        out.extend(b.below_deleted);
    }
    if parent.iter().any(|f| *f != Fate::Delete) {
        out.extend(b.below_surviving);
    }
    out
}

/// A node is useful when something happens to its rows or below them (for an
/// export: when it is reached at all).
fn useful_nodes(graph: &Graph, action: Action, fates: &[BTreeSet<Fate>]) -> Vec<bool> {
    let mut useful: Vec<bool> = fates
        .iter()
        .map(|f| {
            if action == Action::Export {
                !f.is_empty()
            } else {
                f.iter().any(|x| *x != Fate::Keep)
            }
        })
        .collect();
    useful[0] = true;
    for node in (0..graph.nodes.len()).rev() {
        if fates[node].is_empty() {
            continue;
        }
        if graph
            .outgoing(node)
            .any(|(_, e)| !e.is_self_reference() && useful[e.child])
        {
            useful[node] = true;
        }
    }
    useful
}

fn node_plan(
    graph: &Graph,
    s: &Settings,
    fates: &[BTreeSet<Fate>],
    useful: &[bool],
    node: usize,
) -> NodePlan {
    let followed = |b: &Branch, parent: usize| !fates_below(b, &fates[parent]).is_empty();
    let mut branches = Vec::new();
    let mut recursive = Vec::new();
    for (i, e) in graph.incoming(node) {
        let b = branch(i, e, graph, s);
        if !followed(&b, e.parent) || !useful[e.parent] {
            continue;
        }
        if e.is_self_reference() {
            recursive.push(b);
        } else {
            branches.push(b);
        }
    }
    let mut exposed: Vec<String> = Vec::new();
    for (i, e) in graph.outgoing(node) {
        let b = branch(i, e, graph, s);
        if useful[e.child] && followed(&b, node) {
            for c in &e.parent_cols {
                if !exposed.contains(c) {
                    exposed.push(c.clone());
                }
            }
        }
    }
    let table = graph.nodes[node].table;
    let mask_rows = fates[node]
        .iter()
        .any(|f| matches!(f, Fate::Mask | Fate::MaskNullify(_)));
    NodePlan {
        node,
        branches,
        recursive,
        fates: fates[node].clone(),
        exposed,
        masks: if mask_rows {
            s.masks.for_table(table).to_vec()
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::build;
    use crate::graph::tests::{fk, link};

    fn settings<'a>(action: Action, policies: &'a Policies, masks: &'a Masks) -> Settings<'a> {
        Settings {
            action,
            policies,
            masks,
            marks: SubjectMarks::default(),
        }
    }

    fn billing() -> Graph {
        // 1 clients <- 2 invoices <- 3 lines; 4 payments -> clients (SET NULL);
        // 5 users owned through clients.user_id; 6 logins -> users
        build(
            1,
            &[
                fk(2, "client_id", 1, OnDelete::NoAction),
                fk(3, "invoice_id", 2, OnDelete::Cascade),
                fk(4, "client_id", 1, OnDelete::SetNull),
                link(1, "user_id", 5, "id"),
                fk(6, "user_id", 5, OnDelete::NoAction),
            ],
        )
    }

    #[test]
    fn delete_follows_on_delete_rules() {
        let g = billing();
        let (p, m) = (Policies::default(), Masks::default());
        let plan = plan(&g, &settings(Action::Delete, &p, &m));
        let ops: Vec<(u32, Operation)> = plan
            .steps()
            .into_iter()
            .map(|(n, op)| (g.nodes[n].table, op))
            .collect();
        assert!(ops.contains(&(1, Operation::Delete)));
        assert!(ops.contains(&(2, Operation::Delete)));
        assert!(ops.contains(&(3, Operation::Delete)));
        assert!(ops.contains(&(4, Operation::Nullify)));
        assert!(
            ops.contains(&(5, Operation::Delete)),
            "owned rows go with the subject"
        );
        assert!(ops.contains(&(6, Operation::Delete)));
        let clients = plan.node(0).unwrap();
        assert!(clients.exposed.contains(&"id".to_string()));
        assert!(clients.exposed.contains(&"user_id".to_string()));
    }

    #[test]
    fn delete_does_not_look_below_rows_it_keeps() {
        let g = build(
            1,
            &[
                fk(2, "client_id", 1, OnDelete::SetNull),
                fk(3, "invoice_id", 2, OnDelete::Cascade),
            ],
        );
        let (p, m) = (Policies::default(), Masks::default());
        let plan = plan(&g, &settings(Action::Delete, &p, &m));
        assert!(
            plan.node(g.node_of(3).unwrap()).is_none(),
            "lines of a nullified invoice stay"
        );
    }

    #[test]
    fn anonymize_keeps_by_default_and_prunes_what_stays() {
        let g = billing();
        let mut p = Policies::default();
        p.by_edge.insert((6, None), Policy::Delete);
        let mut m = Masks::default();
        m.by_table
            .insert(1, vec![("name".into(), "'Anonymous'".into())]);
        let plan = plan(&g, &settings(Action::Anonymize, &p, &m));
        let root = plan.node(0).unwrap();
        assert_eq!(root.operations(), vec![Operation::Anonymize]);
        assert_eq!(root.masks.len(), 1);
        assert!(
            plan.node(g.node_of(2).unwrap()).is_none(),
            "invoices are kept: nothing to do"
        );
        let logins = plan.node(g.node_of(6).unwrap()).unwrap();
        assert_eq!(logins.operations(), vec![Operation::Delete]);
        assert!(
            plan.node(g.node_of(5).unwrap()).is_some(),
            "users are traversed to reach logins"
        );
    }

    #[test]
    fn rows_below_a_row_anonymize_deletes_follow_the_delete_defaults() {
        let g = billing();
        let mut p = Policies::default();
        p.by_edge
            .insert((2, Some("client_id".into())), Policy::Delete);
        let m = Masks::default();
        let plan = plan(&g, &settings(Action::Anonymize, &p, &m));
        let lines = plan.node(g.node_of(3).unwrap()).unwrap();
        assert_eq!(lines.operations(), vec![Operation::Delete]);
    }

    #[test]
    fn self_references_recurse() {
        let g = build(
            1,
            &[
                fk(2, "author_id", 1, OnDelete::NoAction),
                fk(2, "reply_to", 2, OnDelete::Cascade),
            ],
        );
        let (p, m) = (Policies::default(), Masks::default());
        let plan = plan(&g, &settings(Action::Delete, &p, &m));
        let comments = plan.node(1).unwrap();
        assert_eq!(comments.recursive.len(), 1);
        assert_eq!(comments.exposed, vec!["id".to_string()]);
    }

    #[test]
    fn a_self_reference_on_the_subject_table_does_not_change_the_subjects_own_fate() {
        // people.manager_id -> people (SET NULL): managed people are kept or
        // nullified, the subject row itself is still masked.
        let g = build(1, &[fk(1, "manager_id", 1, OnDelete::SetNull)]);
        let (p, m) = (Policies::default(), Masks::default());
        let plan = plan(&g, &settings(Action::Minimize, &p, &m));
        assert!(plan.node(0).unwrap().fates.contains(&Fate::Keep));
        assert_eq!(root_fate(plan.action), Fate::Mask);
    }

    #[test]
    fn export_reaches_everything_and_changes_nothing() {
        let g = billing();
        let (p, m) = (Policies::default(), Masks::default());
        let plan = plan(&g, &settings(Action::Export, &p, &m));
        assert_eq!(plan.nodes.len(), g.nodes.len());
        assert!(plan.steps().is_empty());
    }
}
