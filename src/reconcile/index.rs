//! Reverse lookups for the watches that wake other controllers: which
//! resources point at an app or a Secret. Kept up to date from the pointing
//! kind's own watch events, so that routing one event costs the few entries
//! it concerns instead of a walk over every cached resource (which made
//! convergence quadratic in the number of resources).

use hashbrown::Equivalent;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex};

/// What a resource points at: a namespace and a name (an app, a Secret).
pub type Target = (String, String);

/// What a resource of kind `K` points at.
type TargetsOf<K> = Box<dyn Fn(&K) -> Vec<Target> + Send>;

/// A namespace and a name (of a resource, or of what it points at), as the
/// index keeps them: 32 bytes, and no string of its own. Every entry that
/// names the same resource shares its name, and every name in a namespace
/// shares the one copy of the namespace ([`Index::intern`]). (A kube
/// `ObjectRef` is 96 bytes with two to four strings of its own.)
#[derive(Clone, PartialEq, Eq)]
struct Name {
    namespace: Arc<str>,
    name: Arc<str>,
}

impl Name {
    fn lookup(&self) -> Lookup<'_> {
        Lookup(&self.namespace, &self.name)
    }
}

/// Hashed as its [`Lookup`] is, so that a map keyed by `Name` can be
/// searched with borrowed strings.
impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.lookup().hash(state)
    }
}

/// A namespace and a name to look up, borrowed: finding an entry copies no
/// string.
#[derive(Hash, PartialEq, Eq)]
struct Lookup<'a>(&'a str, &'a str);

impl Equivalent<Name> for Lookup<'_> {
    fn equivalent(&self, key: &Name) -> bool {
        *self == key.lookup()
    }
}

/// A map keyed by [`Name`], searchable by [`Lookup`]. hashbrown's map (what
/// std's is built on) for the search by another type than the key; std's
/// randomly seeded hasher, as before: names are chosen by users.
type Map<V> = hashbrown::HashMap<Name, V, RandomState>;

/// Fewest interned namespaces before those no longer used are looked for.
const NAMESPACES_SWEPT_FROM: usize = 16;

/// Resources of kind `K` by the targets they point at.
///
/// Lean, since it holds an entry per resource: references are [`Name`]s
/// whose strings are shared, not copied, and the resources pointing at one
/// target are a list (usually of one; a set of one cost four slots of the
/// reference).
pub struct Index<K: Resource<DynamicType = ()>> {
    targets_of: TargetsOf<K>,
    by_target: Map<Vec<Name>>,
    /// The targets of each resource that points at any. Its keys hold the
    /// resources' names, which `by_target`'s lists share; its targets share
    /// the strings of `by_target`'s keys.
    of_object: Map<Box<[Name]>>,
    /// Between the start and the end of a (re)list: the resources it listed
    /// that point at something. Those not listed are gone (their deletion
    /// happened while the watch was away).
    relisted: Option<HashSet<Name>>,
    /// The one copy of each namespace, shared by every [`Name`] in it.
    namespaces: HashSet<Arc<str>>,
    /// How many interned namespaces make [`Index::intern`] look for those no
    /// longer used.
    sweep_namespaces_at: usize,
}

/// An index shared by the watch that keeps it and the routes that read it.
pub type SharedIndex<K> = Arc<Mutex<Index<K>>>;

impl<K: Resource<DynamicType = ()>> Index<K> {
    pub fn shared(targets_of: impl Fn(&K) -> Vec<Target> + Send + 'static) -> SharedIndex<K> {
        Arc::new(Mutex::new(Index {
            targets_of: Box::new(targets_of),
            by_target: Map::default(),
            of_object: Map::default(),
            relisted: None,
            namespaces: HashSet::new(),
            sweep_namespaces_at: NAMESPACES_SWEPT_FROM,
        }))
    }

    /// Takes in one watch event of kind `K`.
    pub fn observe(&mut self, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Init => self.relisted = Some(HashSet::new()),
            watcher::Event::InitApply(obj) => {
                let listed = self.set(obj, &(self.targets_of)(obj));
                if let (Some(relisted), Some(listed)) = (&mut self.relisted, listed) {
                    relisted.insert(listed);
                }
            }
            watcher::Event::InitDone => {
                if let Some(listed) = self.relisted.take() {
                    let gone: Vec<_> = self
                        .of_object
                        .keys()
                        .filter(|r| !listed.contains(*r))
                        .cloned()
                        .collect();
                    for r in gone {
                        self.set_name(r.lookup(), &[]);
                    }
                }
            }
            watcher::Event::Apply(obj) => {
                self.set(obj, &(self.targets_of)(obj));
            }
            watcher::Event::Delete(obj) => {
                self.set(obj, &[]);
            }
        }
    }

    /// Records that `obj` points at `targets`. Returns its name as kept, if
    /// it points at any.
    fn set(&mut self, obj: &K, targets: &[Target]) -> Option<Name> {
        let meta = obj.meta();
        let object = Lookup(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        );
        self.set_name(object, targets)
    }

    /// [`Index::set`] by the resource's namespace and name. Its name and
    /// those of its targets are copied only when new to the index.
    fn set_name(&mut self, object: Lookup<'_>, targets: &[Target]) -> Option<Name> {
        if let Some((kept, old)) = self.of_object.get_key_value(&object)
            && old
                .iter()
                .map(Name::lookup)
                .eq(targets.iter().map(borrowed))
        {
            return Some(kept.clone());
        }
        let object = match self.of_object.remove_entry(&object) {
            Some((kept, old)) => {
                for t in &old {
                    if let Some(list) = self.by_target.get_mut(t) {
                        list.retain(|o| *o != kept);
                        if list.is_empty() {
                            self.by_target.remove(t);
                        }
                    }
                }
                kept
            }
            None if targets.is_empty() => return None,
            None => Name {
                namespace: self.intern(object.0),
                name: object.1.into(),
            },
        };
        if targets.is_empty() {
            return None;
        }
        let targets = targets
            .iter()
            .map(|t| self.point(&object, borrowed(t)))
            .collect();
        self.of_object.insert(object.clone(), targets);
        Some(object)
    }

    /// Adds `object` to the list of `target`. Returns the target's name as
    /// kept (the key of its list).
    fn point(&mut self, object: &Name, target: Lookup<'_>) -> Name {
        if let Some((kept, list)) = self.by_target.get_key_value_mut(&target) {
            if !list.contains(object) {
                list.push(object.clone());
            }
            return kept.clone();
        }
        let kept = Name {
            namespace: self.intern(target.0),
            name: target.1.into(),
        };
        self.by_target.insert(kept.clone(), vec![object.clone()]);
        kept
    }

    /// The one copy of `namespace`.
    ///
    /// A namespace is kept while any [`Name`] holds it, and for a while
    /// after: those no longer held (their resources all deleted) are
    /// dropped once the namespaces kept reach twice those in use (at least
    /// [`NAMESPACES_SWEPT_FROM`]). Namespaces come and go far less often
    /// than resources, and a look costs one pass over the namespaces, not
    /// over the resources.
    fn intern(&mut self, namespace: &str) -> Arc<str> {
        if let Some(kept) = self.namespaces.get(namespace) {
            return kept.clone();
        }
        if self.namespaces.len() >= self.sweep_namespaces_at {
            // Held by the set alone: no resource or target is in it.
            self.namespaces.retain(|ns| Arc::strong_count(ns) > 1);
            self.sweep_namespaces_at = (2 * self.namespaces.len()).max(NAMESPACES_SWEPT_FROM);
        }
        let kept: Arc<str> = namespace.into();
        self.namespaces.insert(kept.clone());
        kept
    }

    /// The resources that point at `namespace`/`name`.
    pub fn pointing_at(&self, namespace: &str, name: &str) -> Vec<ObjectRef<K>> {
        self.by_target
            .get(&Lookup(namespace, name))
            .into_iter()
            .flatten()
            .map(|r| ObjectRef::new(&r.name).within(&r.namespace))
            .collect()
    }
}

fn borrowed((namespace, name): &Target) -> Lookup<'_> {
    Lookup(namespace, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    /// A ConfigMap "points at" the names listed in its data key `to`, in
    /// its own namespace.
    fn cm_in(namespace: &str, name: &str, to: &[&str]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            data: Some([("to".to_string(), to.join(","))].into()),
            ..Default::default()
        }
    }

    fn cm(name: &str, to: &[&str]) -> ConfigMap {
        cm_in("ns", name, to)
    }

    fn targets(c: &ConfigMap) -> Vec<Target> {
        let ns = c.metadata.namespace.clone().unwrap_or_default();
        let to = c.data.as_ref().and_then(|d| d.get("to")).cloned();
        to.unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| (ns.clone(), s.to_string()))
            .collect()
    }

    fn names(index: &Index<ConfigMap>, target: &str) -> Vec<String> {
        let mut v: Vec<_> = index
            .pointing_at("ns", target)
            .into_iter()
            .map(|r| r.name)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn follows_changes_deletes_and_relists() {
        let shared = Index::shared(targets);
        let mut index = shared.lock().unwrap();
        index.observe(&watcher::Event::Init);
        index.observe(&watcher::Event::InitApply(cm("a", &["x"])));
        index.observe(&watcher::Event::InitApply(cm("b", &["x", "y"])));
        index.observe(&watcher::Event::InitDone);
        assert_eq!(names(&index, "x"), ["a", "b"]);
        assert_eq!(names(&index, "y"), ["b"]);

        // A changed reference moves; a delete removes.
        index.observe(&watcher::Event::Apply(cm("a", &["y"])));
        assert_eq!(names(&index, "x"), ["b"]);
        assert_eq!(names(&index, "y"), ["a", "b"]);
        index.observe(&watcher::Event::Delete(cm("b", &["x", "y"])));
        assert!(names(&index, "x").is_empty());
        assert_eq!(names(&index, "y"), ["a"]);

        // A relist that no longer has "a" (deleted while the watch was away)
        // forgets it; one that has "c" learns it.
        index.observe(&watcher::Event::Init);
        index.observe(&watcher::Event::InitApply(cm("c", &["x"])));
        assert_eq!(names(&index, "y"), ["a"], "kept until the relist ends");
        index.observe(&watcher::Event::InitDone);
        assert!(names(&index, "y").is_empty());
        assert_eq!(names(&index, "x"), ["c"]);
        assert!(index.of_object.len() == 1 && index.by_target.len() == 1);
    }

    #[test]
    fn names_and_namespaces_are_shared_not_copied() {
        let shared = Index::shared(targets);
        let mut index = shared.lock().unwrap();
        for i in 0..100 {
            let name = format!("o{i}");
            index.observe(&watcher::Event::Apply(cm(&name, &["x", &name])));
        }
        // The same again changes nothing.
        index.observe(&watcher::Event::Apply(cm("o1", &["x", "o1"])));
        assert_eq!(index.pointing_at("ns", "x").len(), 100);
        assert_eq!(names(&index, "o1"), ["o1"]);

        // One copy of the namespace, held by every name in it: 100 resources
        // (each in `of_object` and in two lists) and 101 targets (each a key
        // of `by_target`, and in the targets of one resource or of all 100).
        assert_eq!(index.namespaces.len(), 1);
        let ns = index.namespaces.iter().next().unwrap();
        assert_eq!(Arc::strong_count(ns), 1 + 100 * 3 + 101 + 100 * 2);

        // A resource's name: one copy, in `of_object` and in its two lists.
        // A target's name: one copy, its key in `by_target` and in the
        // targets of the resources pointing at it.
        let (object, targets) = index.of_object.get_key_value(&Lookup("ns", "o7")).unwrap();
        assert_eq!(Arc::strong_count(&object.name), 3);
        let (x, list) = index.by_target.get_key_value(&Lookup("ns", "x")).unwrap();
        assert!(Arc::ptr_eq(&x.name, &targets[0].name));
        assert_eq!(Arc::strong_count(&x.name), 1 + 100);
        assert!(list.iter().any(|o| Arc::ptr_eq(&o.name, &object.name)));
        assert!(Arc::ptr_eq(&x.namespace, ns) && Arc::ptr_eq(&object.namespace, ns));
    }

    #[test]
    fn namespaces_no_longer_used_are_dropped() {
        let shared = Index::shared(targets);
        let mut index = shared.lock().unwrap();
        index.observe(&watcher::Event::Apply(cm_in("stays", "a", &["x"])));
        for i in 0..100 {
            let ns = format!("ns{i}");
            index.observe(&watcher::Event::Apply(cm_in(&ns, "b", &["x"])));
            index.observe(&watcher::Event::Delete(cm_in(&ns, "b", &["x"])));
        }
        assert!(index.namespaces.len() <= NAMESPACES_SWEPT_FROM);
        assert!(index.namespaces.contains("stays"));
        assert_eq!(index.of_object.len(), 1);
        assert_eq!(index.pointing_at("stays", "x").len(), 1);
    }
}
