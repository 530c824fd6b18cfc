//! Whether a pre-emptive drain leaves the cluster enough writable masters: the other masters
//! of the broker's cluster that the NameServers route writable. A cluster whose brokers fill
//! together must not go read-only before any of them refuses.

use std::time::Duration;

use crate::broker::route::{RouteAnswer, TopicRoute};
use crate::broker::BrokerApi;

/// The other masters of `cluster` that `route` routes writable: broker names other than `own`
/// with an id-0 address whose queues carry the write bit (PermName 2).
pub(crate) fn writable_masters(route: &TopicRoute, cluster: &str, own: &str) -> usize {
    route
        .broker_datas
        .iter()
        .filter(|b| b.cluster == cluster && b.broker_name != own && b.broker_addrs.contains_key(&0))
        .filter(|b| {
            route
                .queues(&b.broker_name)
                .is_some_and(|q| q.perm & 2 != 0)
        })
        .count()
}

/// The topics whose routes show the cluster's masters: the one named after the cluster (a Java
/// broker advertises it, `clusterTopicEnable`), then the first non-system topic the broker
/// shares (`shared`).
pub(crate) fn probe_topics(cluster: &str, shared: Option<&str>) -> Vec<String> {
    std::iter::once(cluster.to_string())
        .chain(shared.map(str::to_string))
        .collect()
}

/// The fewest other writable masters any answering NameServer routes (None: none could
/// tell). Each NameServer is asked for the first of `topics` it knows.
pub(crate) async fn writable_peers(
    api: &BrokerApi,
    namesrvs: &[String],
    topics: &[String],
    (cluster, own): (&str, &str),
    timeout: Duration,
) -> Option<usize> {
    let asks = namesrvs.iter().map(|ns| async move {
        for t in topics {
            match api.topic_route(ns, t, timeout).await {
                Ok(RouteAnswer::Found(r)) => return Some(writable_masters(&r, cluster, own)),
                Ok(RouteAnswer::NotExist) => continue,
                Ok(RouteAnswer::NotReady(_)) | Err(_) => return None,
            }
        }
        None
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .min()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::broker::route::{BrokerData, NamedQueueData, QueueData};

    fn broker(cluster: &str, name: &str, ids: &[i64]) -> BrokerData {
        BrokerData {
            cluster: cluster.into(),
            broker_name: name.into(),
            broker_addrs: ids.iter().map(|i| (*i, format!("{name}:{i}"))).collect::<BTreeMap<_, _>>(),
        }
    }

    fn queues(name: &str, perm: i32) -> NamedQueueData {
        NamedQueueData {
            broker_name: name.into(),
            queues: QueueData {
                read_queue_nums: 4,
                write_queue_nums: 4,
                perm,
            },
        }
    }

    #[test]
    fn only_other_writable_masters_of_the_cluster_count() {
        let route = TopicRoute {
            broker_datas: vec![
                broker("c", "me", &[0]),
                broker("c", "b", &[0, 1]),
                broker("c", "drained", &[0]),
                broker("c", "slave-only", &[1]),
                broker("other", "x", &[0]),
            ],
            queue_datas: vec![
                queues("me", 6),
                queues("b", 6),
                queues("drained", 4),
                queues("slave-only", 6),
                queues("x", 6),
            ],
        };
        assert_eq!(writable_masters(&route, "c", "me"), 1);
        assert_eq!(writable_masters(&route, "c", "b"), 1, "me counts for b");
        assert_eq!(writable_masters(&TopicRoute::default(), "c", "me"), 0);
        assert_eq!(probe_topics("c", Some("orders")), vec!["c", "orders"]);
        assert_eq!(probe_topics("c", None), vec!["c"]);
    }
}
