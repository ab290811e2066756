//! Reverse lookups for the watches that wake other controllers: which
//! resources point at an app or a Secret. Kept up to date from the pointing
//! kind's own watch events, so that routing one event costs the few entries
//! it concerns instead of a walk over every cached resource (which made
//! convergence quadratic in the number of resources).

use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What a resource points at: a namespace and a name (an app, a Secret).
pub type Target = (String, String);

/// What a resource of kind `K` points at.
type TargetsOf<K> = Box<dyn Fn(&K) -> Vec<Target> + Send>;

/// Resources of kind `K` by the targets they point at.
///
/// Lean, since it holds an entry per resource: references carry only a
/// namespace and a name, and the resources pointing at one target are a
/// list (usually of one; a set of one cost four slots of the reference).
pub struct Index<K: Resource<DynamicType = ()>> {
    targets_of: TargetsOf<K>,
    by_target: HashMap<Target, Vec<ObjectRef<K>>>,
    of_object: HashMap<ObjectRef<K>, Box<[Target]>>,
    /// Between the start and the end of a (re)list: the objects it listed.
    /// Those not listed are gone (their deletion happened while the watch
    /// was away).
    relisted: Option<HashSet<ObjectRef<K>>>,
}

/// An index shared by the watch that keeps it and the routes that read it.
pub type SharedIndex<K> = Arc<Mutex<Index<K>>>;

impl<K: Resource<DynamicType = ()>> Index<K> {
    pub fn shared(targets_of: impl Fn(&K) -> Vec<Target> + Send + 'static) -> SharedIndex<K> {
        Arc::new(Mutex::new(Index {
            targets_of: Box::new(targets_of),
            by_target: HashMap::new(),
            of_object: HashMap::new(),
            relisted: None,
        }))
    }

    /// Takes in one watch event of kind `K`.
    pub fn observe(&mut self, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Init => self.relisted = Some(HashSet::new()),
            watcher::Event::InitApply(obj) => {
                let r = bare(obj);
                if let Some(listed) = &mut self.relisted {
                    listed.insert(r.clone());
                }
                self.set(r, (self.targets_of)(obj));
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
                        self.set(r, Vec::new());
                    }
                }
            }
            watcher::Event::Apply(obj) => self.set(bare(obj), (self.targets_of)(obj)),
            watcher::Event::Delete(obj) => self.set(bare(obj), Vec::new()),
        }
    }

    fn set(&mut self, r: ObjectRef<K>, targets: Vec<Target>) {
        if self.of_object.get(&r).map(|t| &t[..]) == Some(&targets[..]) {
            return;
        }
        for old in self.of_object.remove(&r).unwrap_or_default() {
            if let Some(list) = self.by_target.get_mut(&old) {
                list.retain(|o| *o != r);
                if list.is_empty() {
                    self.by_target.remove(&old);
                }
            }
        }
        for t in &targets {
            match self.by_target.get_mut(t) {
                Some(list) if !list.contains(&r) => list.push(r.clone()),
                Some(_) => {}
                None => {
                    self.by_target.insert(t.clone(), vec![r.clone()]);
                }
            }
        }
        if !targets.is_empty() {
            self.of_object.insert(r, targets.into_boxed_slice());
        }
    }

    /// The resources that point at `namespace`/`name`.
    pub fn pointing_at(&self, namespace: &str, name: &str) -> Vec<ObjectRef<K>> {
        self.by_target
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

/// The namespace and name of `obj`, without the version and uid that
/// [`ObjectRef::from_obj`] copies too (an index needs neither).
fn bare<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectRef<K> {
    let meta = obj.meta();
    ObjectRef::new(meta.name.as_deref().unwrap_or_default())
        .within(meta.namespace.as_deref().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    /// A ConfigMap "points at" the names listed in its data key `to`.
    fn cm(name: &str, to: &[&str]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            data: Some([("to".to_string(), to.join(","))].into()),
            ..Default::default()
        }
    }

    fn targets(c: &ConfigMap) -> Vec<Target> {
        let to = c.data.as_ref().and_then(|d| d.get("to")).cloned();
        to.unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| ("ns".to_string(), s.to_string()))
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
}
