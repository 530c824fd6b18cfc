//! `status`: what every NameServer routes producers to for this broker, side by side, and
//! where they disagree. Every NameServer is asked at once under one deadline
//! (`register.timeout`); the CLI sends only reads (GET_BROKER_CLUSTER_INFO, GET_ROUTEINFO_BY_TOPIC),
//! never QUERY_DATA_VERSION or a heartbeat, which would refresh the broker's liveness there.

use std::process::ExitCode;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use serde_json::{json, Map, Value};

use crate::broker::body::{perm, TopicConfigWrapper};
use crate::broker::route::RouteAnswer;
use crate::broker::{ApiError, BrokerApi, BrokerIdentity};
use crate::config::TopicSource;
use crate::daemon::route::compare::{self, audit_topic, Expect, Findings, Want};
use crate::daemon::settings::InForce;
use crate::daemon::topics::TopicState;
use crate::metrics::labels::{Label, RouteKind};

/// Routes read at once with `--topics`.
const TOPIC_READS: usize = 16;

/// Exit when a NameServer could not be asked (and nothing mismatched).
const EXIT_UNASKED: u8 = 2;

/// What one NameServer answered.
struct Row {
    namesrv: String,
    /// Its cluster table's entry for the broker name (Null: not listed).
    addrs: Value,
    /// Who its cluster table says holds the broker's id.
    holder: Option<String>,
    /// The audit topic's route compared.
    findings: Findings,
    error: Option<String>,
    /// With `--topics`: advertised topics whose route differs, with how.
    topics: Vec<(String, Vec<&'static str>)>,
}

impl Row {
    /// The kinds that make `status` exit 1: a read-only route is shown, not counted (a drain,
    /// or an operator's `wipeWritePerm`).
    fn kinds(&self) -> Vec<&'static str> {
        self.findings
            .kinds()
            .filter(|k| *k != RouteKind::Permission || self.findings.writable)
            .map(Label::as_str)
            .collect()
    }

    /// What was read differs (a read that failed after the cluster table answered still
    /// leaves what the table showed).
    fn mismatched(&self) -> bool {
        !self.kinds().is_empty() || !self.topics.is_empty()
    }

    /// The address that takes the broker's id there instead of this broker's, if any.
    fn other(&self, id: &BrokerIdentity) -> Option<&str> {
        self.findings
            .other
            .as_deref()
            .or(self.holder.as_deref().filter(|h| *h != id.addr))
    }

    /// What producers see there, as one comparable value: who holds the id, perm, queues.
    fn view(&self) -> (Option<String>, Option<(i32, i32, i32)>) {
        let q = self
            .findings
            .routed
            .map(|q| (q.perm, q.read_queue_nums, q.write_queue_nums));
        (self.holder.clone(), q)
    }
}

/// The table the daemon would advertise (under `broker.permission`), as far as this command
/// can read it: the file and inline topics, or the broker's own.
async fn advertised(cfg: &InForce, api: &BrokerApi, id: &BrokerIdentity) -> TopicConfigWrapper {
    let mut table = match cfg.broker.topics.source {
        TopicSource::File => {
            let topics = cfg.broker.topics.advertised(&id.name).into_owned();
            let mut state = TopicState::default();
            if let Err(e) = state.refresh(&topics, true) {
                eprintln!("rmq-registrar: {e}: comparing with the inline topics only");
            }
            (*state.table()).clone()
        }
        TopicSource::Broker => match api
            .broker_topics(cfg.broker_check_addr(), cfg.register.timeout)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                eprintln!("rmq-registrar: cannot read the broker's topics ({e}): comparing the broker's entry only");
                TopicConfigWrapper::default()
            }
        },
    };
    if let Some(p) = cfg.broker.permission {
        for t in table.topic_config_table.values_mut() {
            t.perm &= p;
        }
    }
    table
}

/// One NameServer: its cluster entry and the audit topic's route, both at once.
async fn ask(api: &BrokerApi, ns: &str, expect: &Expect, timeout: Duration) -> Row {
    let route = async {
        match &expect.topic {
            Some((t, _)) => Some(api.topic_route(ns, t, timeout).await),
            None => None,
        }
    };
    let (cluster, route) = tokio::join!(api.cluster_brokers(ns, timeout), route);
    let mut row = Row {
        namesrv: ns.to_string(),
        addrs: Value::Null,
        holder: None,
        findings: Findings::default(),
        error: None,
        topics: Vec::new(),
    };
    let table = match cluster {
        Ok(t) => t,
        Err(e) => {
            row.error = Some(e.to_string());
            return row;
        }
    };
    row.addrs = table
        .get(&expect.id.name)
        .and_then(|b| b.get("brokerAddrs"))
        .cloned()
        .unwrap_or(Value::Null);
    row.holder = crate::broker::id_holder(&table, &expect.id.name, expect.id.id);
    let route = match &route {
        None => None,
        Some(Ok(RouteAnswer::Found(r))) => Some(Some(r)),
        Some(Ok(RouteAnswer::NotExist)) => Some(None),
        Some(Ok(RouteAnswer::NotReady(remark))) => {
            row.error = Some(format!("not ready: {remark}"));
            None
        }
        Some(Err(e)) => {
            row.error = Some(e.to_string());
            None
        }
    };
    // The daemon's own judgement: the cluster table decides for a topic this broker could not
    // route (a slave's, a chosen one it does not advertise).
    row.findings = compare::judge(expect, route, Some(&table));
    row
}

/// `--topics`: every advertised topic's route on `ns`, a few at a time; the topics that differ.
async fn every_topic(
    api: &BrokerApi,
    ns: &str,
    id: &BrokerIdentity,
    table: &TopicConfigWrapper,
    timeout: Duration,
) -> Result<Vec<(String, Vec<&'static str>)>, ApiError> {
    let reads = table.topic_config_table.iter().map(|(name, t)| async move {
        let expect = Expect {
            id: id.clone(),
            topic: Some((name.clone(), Some(Want::of(t)))),
        };
        let answer = api.topic_route(ns, name, timeout).await?;
        let f = match &answer {
            RouteAnswer::Found(r) => compare::route(&expect, Some(r)),
            // A slave's topics have no route while its master is away: nothing of its own.
            _ if !expect.could_route() => compare::Findings::default(),
            _ => compare::route(&expect, None),
        };
        let kinds: Vec<&'static str> = f
            .kinds()
            .filter(|k| *k != RouteKind::Permission || f.writable)
            .map(Label::as_str)
            .collect();
        Ok::<_, ApiError>((name.clone(), kinds))
    });
    let mut out = Vec::new();
    let mut s = stream::iter(reads).buffer_unordered(TOPIC_READS);
    while let Some(r) = s.next().await {
        let (name, kinds) = r?;
        if !kinds.is_empty() {
            out.push((name, kinds));
        }
    }
    out.sort();
    Ok(out)
}

/// The text line of one row.
fn line(row: &Row, id: &BrokerIdentity, expect: &Expect) -> String {
    if let (Some(e), false) = (&row.error, row.mismatched()) {
        return format!("{}\t{}\terror {e}", row.namesrv, id.name);
    }
    let mut s = if row.addrs.is_null() {
        "not registered".to_string()
    } else {
        format!("registered {}", row.addrs)
    };
    match (&row.holder, row.addrs.is_null()) {
        (Some(h), false) if *h != id.addr => {
            s.push_str(&format!("; id {} is {h}, not {}", id.id, id.addr))
        }
        (None, false) => s.push_str(&format!("; id {} is not listed", id.id)),
        _ => {}
    }
    if let (Some((topic, _)), Some(q)) = (&expect.topic, row.findings.routed) {
        s.push_str(&format!(
            "; route {topic}: perm {} queues {}/{}",
            q.perm, q.read_queue_nums, q.write_queue_nums
        ));
        if q.perm & perm::WRITE as i32 == 0 {
            s.push_str(" (read-only)");
        }
    }
    let kinds = row.kinds();
    if !kinds.is_empty() {
        s.push_str(&format!("; mismatch {}", kinds.join(",")));
        if let Some(o) = row.other(id) {
            s.push_str(&format!(" (id {} held by {o})", id.id));
        }
    }
    for (t, k) in &row.topics {
        s.push_str(&format!("; topic {t}: {}", k.join(",")));
    }
    if let Some(e) = &row.error {
        s.push_str(&format!("; then error {e}"));
    }
    format!("{}\t{}\t{s}", row.namesrv, id.name)
}

/// The JSON object of one row (docs: README, `status --json`).
fn object(row: &Row, id: &BrokerIdentity, expect: &Expect) -> Value {
    let holds = row.holder.as_deref() == Some(id.addr.as_str());
    let route = row.findings.routed.map(|q| {
        json!({
            "topic": expect.topic.as_ref().map(|(t, _)| t),
            "perm": q.perm,
            "readQueueNums": q.read_queue_nums,
            "writeQueueNums": q.write_queue_nums,
        })
    });
    let topics: Map<String, Value> = row
        .topics
        .iter()
        .map(|(t, k)| (t.clone(), json!(k)))
        .collect();
    json!({
        "namesrv": row.namesrv,
        "broker": id.name,
        "id": id.id,
        "registered": !row.addrs.is_null(),
        "holds_id": holds,
        "id_holder": row.holder,
        "brokerAddrs": row.addrs,
        "route": route,
        "mismatch": row.kinds(),
        "other": row.other(id),
        "topics": topics,
        "error": row.error,
    })
}

/// Where NameServers that answered route producers differently.
fn disagreement(rows: &[Row]) -> Option<String> {
    let answered: Vec<&Row> = rows.iter().filter(|r| r.error.is_none()).collect();
    let first = answered.first()?;
    if answered.iter().all(|r| r.view() == first.view()) {
        return None;
    }
    let each: Vec<String> = answered
        .iter()
        .map(|r| {
            let (holder, q) = r.view();
            let q = q.map_or("no route".into(), |(p, rq, wq)| {
                format!("perm {p} queues {rq}/{wq}")
            });
            format!(
                "{}: id held by {}, {q}",
                r.namesrv,
                holder.as_deref().unwrap_or("nobody")
            )
        })
        .collect();
    Some(each.join("; "))
}

/// What the broker says of its write health (None: not asked, as the daemon does not ask it
/// with `broker.health.check` other than `remoting`, or it did not answer): its disk use and
/// refusal threshold in percent, and whether its store takes writes.
async fn write_health(cfg: &InForce, api: &BrokerApi) -> Option<(Option<u32>, u32, Option<bool>)> {
    if cfg.broker.health.check != crate::config::HealthCheck::Remoting {
        return None;
    }
    let (addr, t) = (cfg.broker_check_addr(), cfg.broker.health.timeout);
    let store = api.store_health(addr, t).await.ok()?;
    let threshold = crate::daemon::fault::threshold(api, cfg).await;
    Some((
        crate::daemon::fault::level::disk_pct(&store),
        threshold,
        store.writable,
    ))
}

/// Whether the broker refuses writes, by what it said (the fault drain's own levels).
fn refuses(disk: Option<u32>, threshold: u32, writable: Option<bool>) -> bool {
    let at = crate::daemon::fault::level::Levels {
        threshold,
        margin: 0,
    };
    disk.is_some_and(|p| at.refuses(p)) || writable == Some(false)
}

/// The broker's line: its disk against its threshold, and whether it refuses writes now (the
/// routes its read-only state shows are the rows': a fault drain ends only well below).
fn broker_line(name: &str, health: Option<(Option<u32>, u32, Option<bool>)>) -> String {
    let Some((disk, threshold, writable)) = health else {
        return format!(
            "broker\t{name}\tnot asked (no answer, or broker.health.check is not remoting)"
        );
    };
    let verdict = if refuses(disk, threshold, writable) {
        "refuses writes"
    } else {
        "takes writes"
    };
    let disk = disk.map_or_else(
        || "disk not reported".to_string(),
        |p| format!("disk {p} %"),
    );
    let store = match writable {
        Some(false) => "; its store takes no writes",
        _ => "",
    };
    format!("broker\t{name}\t{disk} (refuses writes above {threshold} %){store}: {verdict}")
}

/// The same, for `--json`'s summary.
fn broker_json(name: &str, health: Option<(Option<u32>, u32, Option<bool>)>) -> Value {
    match health {
        None => json!({"name": name, "asked": false}),
        Some((disk, threshold, writable)) => json!({
            "name": name, "asked": true, "disk_percent": disk, "threshold_percent": threshold,
            "store_writable": writable, "refuses_writes": refuses(disk, threshold, writable),
        }),
    }
}

/// `status`: exit 1 when any NameServer routes the broker otherwise than advertised (naming
/// the other address), else 2 when one could not be asked, else 0. With `any`, 0 when at least
/// one NameServer maps the broker's id to its address (the package's restart rule), else 1.
pub(super) async fn status(cfg: &InForce, json: bool, any: bool, topics: bool) -> ExitCode {
    let (api, id, addrs) = match super::oneshot::api_and_identity(cfg).await {
        Ok(found) => found,
        Err(code) => return code,
    };
    let health = write_health(cfg, &api).await;
    let table = advertised(cfg, &api, &id).await;
    let expect = Expect {
        topic: audit_topic(cfg.route.audit_topic.as_deref(), &id, &table),
        id: id.clone(),
    };
    let timeout = cfg.register.timeout;
    let asks = addrs.iter().map(|ns| async {
        let mut row = ask(&api, ns, &expect, timeout).await;
        if topics && row.error.is_none() {
            match every_topic(&api, ns, &id, &table, timeout).await {
                Ok(t) => row.topics = t,
                Err(e) => row.error = Some(format!("reading every topic's route: {e}")),
            }
        }
        row
    });
    let rows = futures_util::future::join_all(asks).await;
    api.client().shutdown();
    let disagree = disagreement(&rows);
    let mismatched: Vec<&str> = rows
        .iter()
        .filter(|r| r.mismatched())
        .map(|r| r.namesrv.as_str())
        .collect();
    let unasked: Vec<&str> = rows
        .iter()
        .filter(|r| r.error.is_some() && !r.mismatched())
        .map(|r| r.namesrv.as_str())
        .collect();
    let one_holds = rows
        .iter()
        .any(|r| r.holder.as_deref() == Some(id.addr.as_str()));
    let code: u8 = match () {
        _ if any => u8::from(!one_holds),
        _ if !mismatched.is_empty() => 1,
        _ if !unasked.is_empty() => EXIT_UNASKED,
        _ => 0,
    };
    for row in &rows {
        if json {
            say!("{}", object(row, &id, &expect));
        } else {
            say!("{}", line(row, &id, &expect));
        }
    }
    if !json {
        say!("{}", broker_line(&id.name, health));
    }
    if json {
        let summary = json!({
            "summary": {
                "namesrvs": rows.len(),
                "mismatched": mismatched,
                "unreachable": unasked,
                "disagree": disagree,
                "broker": broker_json(&id.name, health),
                "exit": code,
            }
        });
        say!("{summary}");
    } else if let Some(d) = disagree {
        say!("disagree\t{}\t{d}", id.name);
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_line_says_whether_it_takes_writes() {
        assert_eq!(
            broker_line("b", Some((Some(95), 90, None))),
            "broker\tb\tdisk 95 % (refuses writes above 90 %): refuses writes"
        );
        assert_eq!(
            broker_line("b", Some((Some(50), 90, Some(true)))),
            "broker\tb\tdisk 50 % (refuses writes above 90 %): takes writes"
        );
        assert!(broker_line("b", Some((None, 90, Some(false))))
            .contains("its store takes no writes: refuses writes"));
        let v = broker_json("b", Some((Some(91), 90, None)));
        assert_eq!(v["refuses_writes"], true);
        assert_eq!(v["disk_percent"], 91);
        assert!(broker_line("b", None).contains("not asked"));
        assert_eq!(broker_json("b", None)["asked"], false);
    }
}
