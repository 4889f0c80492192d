//! The subject graph: every table that holds data about a subject, found from
//! foreign keys and declared links, as plain values. Pure: no SPI.
//!
//! Nodes are tables (node 0 is the subject table), in an order where every
//! node comes after all of its parents. Edges run from a parent node to a
//! child node: child rows whose `child_cols` equal the parent row's
//! `parent_cols` belong to the subject. A self-reference is an edge whose
//! parent and child are the same node; it is followed recursively. An edge
//! that would close a cycle through several tables is cut and reported.

use crate::model::{Oid, Origin, Reference};
use std::collections::{BTreeSet, HashMap, VecDeque};

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub table: Oid,
    /// Shortest distance from the subject table.
    pub depth: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub parent: usize,
    pub child: usize,
    /// Columns of the child node's table matched against the parent's.
    pub child_cols: Vec<String>,
    pub parent_cols: Vec<String>,
    pub reference: Reference,
    /// The child is an owned parent: a row the subject row points to through a
    /// declared link (a login row), which goes with the subject.
    pub owned: bool,
}

impl Edge {
    pub fn is_self_reference(&self) -> bool {
        self.parent == self.child
    }

    /// The table whose column holds the reference, and that column set: the
    /// key under which policies are declared.
    pub fn referencing(&self) -> (Oid, &[String]) {
        (self.reference.child, &self.reference.child_cols)
    }

    /// The referencing columns live in the child node's table (so the child
    /// row can be nullified).
    pub fn can_nullify(&self) -> bool {
        !self.owned
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// References left out because they would close a cycle of tables.
    pub cut: Vec<Reference>,
}

impl Graph {
    #[cfg(test)]
    pub fn node_of(&self, table: Oid) -> Option<usize> {
        self.nodes.iter().position(|n| n.table == table)
    }

    pub fn incoming(&self, node: usize) -> impl Iterator<Item = (usize, &Edge)> {
        self.edges
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.child == node)
    }

    pub fn outgoing(&self, node: usize) -> impl Iterator<Item = (usize, &Edge)> {
        self.edges
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.parent == node)
    }

    /// Every table in the graph.
    pub fn tables(&self) -> Vec<Oid> {
        self.nodes.iter().map(|n| n.table).collect()
    }
}

/// A traversal step before nodes are numbered: from table to table.
struct Candidate {
    parent: Oid,
    child: Oid,
    child_cols: Vec<String>,
    parent_cols: Vec<String>,
    reference: Reference,
    owned: bool,
}

/// Builds the graph of `subject` from every known reference.
pub fn build(subject: Oid, references: &[Reference]) -> Graph {
    let candidates = discover(subject, references);
    let (kept, cut) = cut_cycles(subject, candidates);
    number(subject, kept, cut)
}

/// Breadth-first from the subject: children through references to a reached
/// table, and owned parents through links declared on the subject table.
fn discover(subject: Oid, references: &[Reference]) -> Vec<Candidate> {
    let mut reached: BTreeSet<Oid> = BTreeSet::from([subject]);
    let mut queue = VecDeque::from([subject]);
    let mut found = Vec::new();
    while let Some(table) = queue.pop_front() {
        // A link declared on the subject table is an owned parent, handled
        // below; walking it backwards would only meet the subject again.
        let owned_link = |r: &Reference| r.child == subject && r.is_link();
        for r in references
            .iter()
            .filter(|r| r.parent == table && !owned_link(r))
        {
            found.push(Candidate {
                parent: table,
                child: r.child,
                child_cols: r.child_cols.clone(),
                parent_cols: r.parent_cols.clone(),
                reference: r.clone(),
                owned: false,
            });
            if reached.insert(r.child) {
                queue.push_back(r.child);
            }
        }
        if table == subject {
            for r in references
                .iter()
                .filter(|r| r.child == subject && r.is_link())
            {
                found.push(Candidate {
                    parent: subject,
                    child: r.parent,
                    child_cols: r.parent_cols.clone(),
                    parent_cols: r.child_cols.clone(),
                    reference: r.clone(),
                    owned: true,
                });
                if reached.insert(r.parent) {
                    queue.push_back(r.parent);
                }
            }
        }
    }
    found
}

/// Depth-first from the subject in a fixed order; an edge into a table that
/// is still on the path closes a cycle and is cut (self-references stay: they
/// are followed recursively within one table). PostgreSQL's clones of
/// foreign keys on partitions come last: one is cut when it would close a
/// cycle with what is kept, so that a foreign key declared by the schema is
/// never cut for a clone.
fn cut_cycles(subject: Oid, candidates: Vec<Candidate>) -> (Vec<Candidate>, Vec<Reference>) {
    let cloned =
        |c: &Candidate| matches!(c.reference.origin, Origin::ForeignKey { cloned: true, .. });
    let mut by_parent: HashMap<Oid, Vec<usize>> = HashMap::new();
    for (i, c) in candidates.iter().enumerate().filter(|(_, c)| !cloned(c)) {
        by_parent.entry(c.parent).or_default().push(i);
    }
    let mut closing = BTreeSet::new();
    let mut done = BTreeSet::new();
    let mut on_path = BTreeSet::new();
    // From the subject, then from tables reached only through clones.
    let roots: Vec<Oid> = std::iter::once(subject)
        .chain(candidates.iter().map(|c| c.parent))
        .collect();
    for root in roots {
        if !done.contains(&root) {
            visit(
                root,
                &candidates,
                &by_parent,
                &mut on_path,
                &mut done,
                &mut closing,
            );
        }
    }
    let mut kept_edges: Vec<(Oid, Oid)> = candidates
        .iter()
        .enumerate()
        .filter(|(i, c)| !cloned(c) && !closing.contains(i) && c.parent != c.child)
        .map(|(_, c)| (c.parent, c.child))
        .collect();
    for (i, c) in candidates.iter().enumerate().filter(|(_, c)| cloned(c)) {
        if c.parent == c.child {
            continue;
        }
        if reaches(c.child, c.parent, &kept_edges) {
            closing.insert(i);
        } else {
            kept_edges.push((c.parent, c.child));
        }
    }
    let mut kept = Vec::new();
    let mut cut = Vec::new();
    for (i, c) in candidates.into_iter().enumerate() {
        if closing.contains(&i) {
            cut.push(c.reference);
        } else {
            kept.push(c);
        }
    }
    (kept, cut)
}

/// Whether `to` can be reached from `from` through `edges` (parent, child).
fn reaches(from: Oid, to: Oid, edges: &[(Oid, Oid)]) -> bool {
    let mut seen = BTreeSet::from([from]);
    let mut queue = VecDeque::from([from]);
    while let Some(t) = queue.pop_front() {
        if t == to {
            return true;
        }
        for (_, child) in edges.iter().filter(|(p, _)| *p == t) {
            if seen.insert(*child) {
                queue.push_back(*child);
            }
        }
    }
    false
}

fn visit(
    table: Oid,
    candidates: &[Candidate],
    by_parent: &HashMap<Oid, Vec<usize>>,
    on_path: &mut BTreeSet<Oid>,
    done: &mut BTreeSet<Oid>,
    closing: &mut BTreeSet<usize>,
) {
    on_path.insert(table);
    for &i in by_parent.get(&table).map(Vec::as_slice).unwrap_or(&[]) {
        let child = candidates[i].child;
        if child == table {
            continue;
        }
        if on_path.contains(&child) {
            closing.insert(i);
        } else if !done.contains(&child) {
            visit(child, candidates, by_parent, on_path, done, closing);
        }
    }
    on_path.remove(&table);
    done.insert(table);
}

/// Numbers the tables so that parents come before children (Kahn's
/// algorithm, ties broken by discovery order for a stable plan).
fn number(subject: Oid, kept: Vec<Candidate>, cut: Vec<Reference>) -> Graph {
    let mut order: Vec<Oid> = vec![subject];
    for c in &kept {
        for t in [c.parent, c.child] {
            if !order.contains(&t) {
                order.push(t);
            }
        }
    }
    let mut waiting: HashMap<Oid, usize> = order.iter().map(|t| (*t, 0)).collect();
    for c in kept.iter().filter(|c| c.parent != c.child) {
        *waiting.get_mut(&c.child).unwrap() += 1;
    }
    let mut sorted: Vec<Oid> = Vec::new();
    while sorted.len() < order.len() {
        let next = *order
            .iter()
            .find(|t| !sorted.contains(t) && waiting[*t] == 0)
            .expect("cycles were cut");
        sorted.push(next);
        for c in kept.iter().filter(|c| c.parent == next && c.child != next) {
            *waiting.get_mut(&c.child).unwrap() -= 1;
        }
    }
    let index: HashMap<Oid, usize> = sorted.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let depths = shortest_depths(subject, &kept);
    Graph {
        nodes: sorted
            .iter()
            .map(|t| Node {
                table: *t,
                depth: depths[t],
            })
            .collect(),
        edges: kept
            .into_iter()
            .map(|c| Edge {
                parent: index[&c.parent],
                child: index[&c.child],
                child_cols: c.child_cols,
                parent_cols: c.parent_cols,
                reference: c.reference,
                owned: c.owned,
            })
            .collect(),
        cut,
    }
}

fn shortest_depths(subject: Oid, kept: &[Candidate]) -> HashMap<Oid, u32> {
    let mut depth = HashMap::from([(subject, 0u32)]);
    let mut queue = VecDeque::from([subject]);
    while let Some(t) = queue.pop_front() {
        let d = depth[&t];
        for c in kept.iter().filter(|c| c.parent == t) {
            depth.entry(c.child).or_insert_with(|| {
                queue.push_back(c.child);
                d + 1
            });
        }
    }
    depth
}

/// How the graph() function describes an edge's origin.
pub fn describe_origin(edge: &Edge) -> String {
    match (&edge.reference.origin, edge.owned) {
        (_, true) => "owned link".to_string(),
        (Origin::ForeignKey { name, .. }, _) => format!("foreign key {name}"),
        (Origin::Link { .. }, _) if edge.reference.condition.is_some() => {
            format!(
                "link where {}",
                edge.reference.condition.as_deref().unwrap_or("")
            )
        }
        (Origin::Link { .. }, _) => "link".to_string(),
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::model::OnDelete;

    pub fn fk(child: Oid, col: &str, parent: Oid, on_delete: OnDelete) -> Reference {
        Reference {
            child,
            child_cols: vec![col.to_string()],
            parent,
            parent_cols: vec!["id".to_string()],
            origin: Origin::ForeignKey {
                name: format!("fk_{child}_{col}"),
                on_delete,
                cloned: false,
            },
            condition: None,
        }
    }

    pub fn link(child: Oid, col: &str, parent: Oid, pcol: &str) -> Reference {
        Reference {
            child,
            child_cols: vec![col.to_string()],
            parent,
            parent_cols: vec![pcol.to_string()],
            origin: Origin::Link {
                id: 1,
                array: false,
            },
            condition: None,
        }
    }

    fn position(g: &Graph, t: Oid) -> usize {
        g.node_of(t).unwrap()
    }

    #[test]
    fn a_tree_is_reached_transitively_with_parents_first() {
        // 1 clients <- 2 invoices <- 3 lines; 4 transactions -> invoices and clients
        let refs = vec![
            fk(3, "invoice_id", 2, OnDelete::Cascade),
            fk(2, "client_id", 1, OnDelete::NoAction),
            fk(4, "client_id", 1, OnDelete::NoAction),
            fk(4, "invoice_id", 2, OnDelete::SetNull),
            fk(9, "other_id", 8, OnDelete::NoAction),
        ];
        let g = build(1, &refs);
        assert_eq!(g.nodes.len(), 4);
        assert_eq!(g.nodes[0].table, 1);
        assert!(position(&g, 2) < position(&g, 3));
        assert!(position(&g, 2) < position(&g, 4));
        assert_eq!(g.nodes[position(&g, 3)].depth, 2);
        assert_eq!(g.nodes[position(&g, 4)].depth, 1);
        assert_eq!(g.edges.len(), 4);
        assert!(g.node_of(9).is_none(), "unrelated tables stay out");
    }

    #[test]
    fn self_references_are_kept_and_cycles_are_cut() {
        let refs = vec![
            fk(2, "client_id", 1, OnDelete::NoAction),
            fk(2, "reply_to", 2, OnDelete::Cascade),
            fk(3, "b_id", 2, OnDelete::NoAction),
            fk(2, "c_id", 3, OnDelete::NoAction), // closes 2 -> 3 -> 2
            fk(1, "favourite", 3, OnDelete::SetNull), // closes back to the subject
        ];
        let g = build(1, &refs);
        assert_eq!(g.nodes.len(), 3);
        assert!(g.edges.iter().any(|e| e.is_self_reference()));
        assert_eq!(g.cut.len(), 2);
        for e in g.edges.iter().filter(|e| !e.is_self_reference()) {
            assert!(e.parent < e.child, "parents come first");
        }
    }

    #[test]
    fn a_link_on_the_subject_table_makes_an_owned_parent() {
        // clients.user_id -> users.id declared as a link; login_logs -> users
        let refs = vec![
            link(1, "user_id", 5, "id"),
            fk(1, "user_id", 5, OnDelete::NoAction),
            fk(6, "user_id", 5, OnDelete::Cascade),
        ];
        let g = build(1, &refs);
        let users = position(&g, 5);
        let owned = g.edges.iter().find(|e| e.child == users).unwrap();
        assert!(owned.owned);
        assert_eq!(owned.child_cols, vec!["id"]);
        assert_eq!(owned.parent_cols, vec!["user_id"]);
        assert!(
            g.node_of(6).is_some(),
            "the owned row's own children are reached"
        );
        assert_eq!(g.cut.len(), 1, "the foreign key back to the subject is cut");
    }

    #[test]
    fn diamond_shaped_graphs_put_shared_children_last() {
        // 1 <- 2 <- 4 and 1 <- 3 <- 4, plus 4 discovered early via 1 directly
        let refs = vec![
            fk(4, "client_id", 1, OnDelete::NoAction),
            fk(2, "client_id", 1, OnDelete::NoAction),
            fk(3, "b", 2, OnDelete::NoAction),
            fk(4, "c", 3, OnDelete::NoAction),
        ];
        let g = build(1, &refs);
        assert!(position(&g, 3) < position(&g, 4));
        assert_eq!(g.nodes[position(&g, 4)].depth, 1);
    }
}
