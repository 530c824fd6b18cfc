use super::*;
use crate::broker::body::TopicConfig;

fn round(n: usize) -> RoundBodies {
    let mut w = TopicConfigWrapper::default();
    for i in 0..n {
        let name = format!("T{i:05}");
        w.topic_config_table
            .insert(name.clone(), TopicConfig::new(name, 8));
    }
    RoundBodies::new(Arc::new(w))
}

/// Every batch of `size` as encoded directly.
fn expected(r: &RoundBodies, size: usize) -> Vec<Encoded> {
    encode::batch_starts(r.topics(), size)
        .iter()
        .map(|s| encode::batch(r.topics(), s, size, 0))
        .collect()
}

#[tokio::test]
async fn one_namesrv_holds_no_batch_but_the_one_it_sends() {
    let r = round(1_000);
    let want = expected(&r, 300);
    let mut c = r.batches(300);
    assert_eq!(c.count().await.unwrap(), 4);
    let mut got = Vec::new();
    while let Some(b) = c.next().await.unwrap() {
        assert_eq!(r.kept(), [], "nothing kept for a NameServer that took it");
        got.push(b);
    }
    assert_eq!(got, want);
}

#[tokio::test]
async fn namesrvs_in_step_share_each_batch() {
    let r = round(1_000);
    let (mut a, mut b) = (r.batches(300), r.batches(300));
    for i in 0..4 {
        let x = a.next().await.unwrap().unwrap();
        assert_eq!(r.kept(), [(300, i)], "kept for the other one");
        let y = b.next().await.unwrap().unwrap();
        assert_eq!(x.0.as_ptr(), y.0.as_ptr(), "batch {i} encoded once");
        assert_eq!(r.kept(), []);
    }
    assert!(a.next().await.unwrap().is_none());
    assert!(b.next().await.unwrap().is_none());
}

#[tokio::test]
async fn a_laggard_pins_at_most_two_batches_and_encodes_the_rest_itself() {
    let r = round(1_000);
    let want = expected(&r, 100);
    let (mut fast, mut slow) = (r.batches(100), r.batches(100));
    let mut got_fast = Vec::new();
    while let Some(x) = fast.next().await.unwrap() {
        got_fast.push(x);
        assert!(r.kept().len() <= 1 + KEEP_BEHIND, "{:?}", r.kept());
    }
    // Kept for the laggard: only the last ones.
    assert_eq!(r.kept(), [(100, 8), (100, 9)]);
    let mut got_slow = Vec::new();
    while let Some(y) = slow.next().await.unwrap() {
        got_slow.push(y);
    }
    assert_eq!(got_fast, want);
    assert_eq!(got_slow, want);
    assert_eq!(r.kept(), []);
}

#[tokio::test]
async fn a_namesrv_that_gives_up_leaves_nothing_kept_for_it() {
    let r = round(1_000);
    let mut a = r.batches(300);
    let b = r.batches(300);
    a.next().await.unwrap();
    assert_eq!(r.kept(), [(300, 0)]);
    drop(b);
    assert_eq!(r.kept(), []);
    // Its place is reused by the next one.
    let (b_id, c) = (1, r.batches(300));
    assert_eq!((a.id, c.id), (0, b_id));
}

#[tokio::test]
async fn whole_bodies_and_the_plain_length_are_computed_once() {
    let r = round(1_000);
    let (a, b) = (r.whole(None).await, r.whole(None).await);
    assert_eq!(a.0.as_ptr(), b.0.as_ptr());
    assert_eq!(a, encode::plain(r.topics()));
    assert_eq!(r.plain_len().await.unwrap(), a.0.len());
    let z = r.whole(Some(CompressionForm::Zlib5x)).await;
    assert_eq!(z, encode::compressed(r.topics(), CompressionForm::Zlib5x));
}
