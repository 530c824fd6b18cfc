use super::*;

const MIB: usize = 1024 * 1024;

fn peer(language: LanguageCode, version: i32) -> Option<PeerInfo> {
    Some(PeerInfo { language, version })
}

const RUST: Option<PeerInfo> = Some(PeerInfo {
    language: LanguageCode::RUST,
    version: 479,
});

fn java5() -> Option<PeerInfo> {
    peer(LanguageCode::JAVA, VERSION_5_0_0)
}

fn java4() -> Option<PeerInfo> {
    peer(LanguageCode::JAVA, 409)
}

fn facts(peer: Option<PeerInfo>, asked: Asked, topics: usize, plain_len: Option<usize>) -> Facts {
    Facts {
        peer,
        asked,
        topics,
        plain_len,
        deletes: Deletes::No,
    }
}

/// Options: the daemon's defaults with heartbeats on (force, plain JSON, 16 MiB frames).
fn opts() -> RegisterOptions {
    RegisterOptions {
        max_frame: 16 * MIB,
        ..RegisterOptions::default()
    }
}

fn whole(form: Option<CompressionForm>) -> Step {
    Step::Whole {
        form,
        sent_as: SentAs::Whole,
    }
}

const AUTO_4X: Step = Step::Whole {
    form: Some(CompressionForm::Zlib4x),
    sent_as: SentAs::AutoCompressed,
};

#[test]
fn form_follows_the_peer() {
    assert_eq!(CompressionForm::for_peer(None), None);
    assert_eq!(
        CompressionForm::for_peer(peer(LanguageCode::RUST, 479)),
        Some(CompressionForm::RawDeflate)
    );
    assert_eq!(
        CompressionForm::for_peer(peer(LanguageCode::JAVA, 413)),
        Some(CompressionForm::Zlib5x)
    );
    assert_eq!(
        CompressionForm::for_peer(peer(LanguageCode::JAVA, 409)),
        Some(CompressionForm::Zlib4x)
    );
    assert_eq!(CompressionForm::for_peer(peer(LanguageCode(9), 479)), None);
}

#[test]
fn the_plan_table() {
    let compressed = RegisterOptions {
        compressed: true,
        ..opts()
    };
    let check = RegisterOptions {
        force: false,
        ..opts()
    };
    let check_oneway = RegisterOptions {
        force: false,
        oneway: true,
        ..opts()
    };
    let always = RegisterOptions {
        always_split: true,
        ..opts()
    };
    let small_frame = RegisterOptions {
        max_frame: 4 * MIB,
        ..opts()
    };
    let def = opts();
    let ok = Asked::Answered { current: false };
    let cur = Asked::Answered { current: true };
    // 150k topics of ~190 bytes: 28.5 MB of plain JSON.
    let big = 28_500_000;
    let fit_16 = fitting_batch(big, 150_000, 16 * MIB);
    let cases: Vec<(&str, &RegisterOptions, Facts, Step)> = vec![
        // Small tables: one plain body, nothing asked first.
        (
            "small, unknown",
            &def,
            facts(None, Asked::Not, 10, None),
            whole(None),
        ),
        (
            "small, rust",
            &def,
            facts(RUST, Asked::Not, 800, None),
            whole(None),
        ),
        // Above split_size the plain body's length decides; it is measured, not encoded.
        (
            "big, unmeasured",
            &def,
            facts(RUST, Asked::Not, 150_000, None),
            Step::MeasurePlain,
        ),
        (
            "big, fits",
            &def,
            facts(RUST, Asked::Not, 150_000, Some(16 * MIB - HEADER_ROOM)),
            whole(None),
        ),
        (
            "big, one byte over",
            &def,
            facts(RUST, Asked::Not, 150_000, Some(16 * MIB - HEADER_ROOM + 1)),
            Step::Split {
                size: fitting_batch(16 * MIB - HEADER_ROOM + 1, 150_000, 16 * MIB),
            },
        ),
        // Too big: the form decides split or compress; unknown → learn it first, once.
        (
            "too big, unknown",
            &def,
            facts(None, Asked::Not, 150_000, Some(big)),
            Step::Query,
        ),
        (
            "too big, unknown, no answer",
            &def,
            facts(None, Asked::NoAnswer, 150_000, Some(big)),
            Step::Split { size: fit_16 },
        ),
        (
            "too big, rust",
            &def,
            facts(RUST, Asked::Not, 150_000, Some(big)),
            Step::Split { size: fit_16 },
        ),
        (
            "too big, java 5",
            &def,
            facts(java5(), ok, 150_000, Some(big)),
            Step::Split { size: fit_16 },
        ),
        (
            "too big, java 4",
            &def,
            facts(java4(), ok, 150_000, Some(big)),
            AUTO_4X,
        ),
        (
            "too big, odd peer",
            &def,
            facts(peer(LanguageCode(9), 1), Asked::Not, 150_000, Some(big)),
            Step::Split { size: fit_16 },
        ),
        (
            "too big, smaller frames",
            &small_frame,
            facts(RUST, Asked::Not, 150_000, Some(big)),
            Step::Split {
                size: fitting_batch(big, 150_000, 4 * MIB),
            },
        ),
        // Java's enableSplitRegistration: split at split_size, nothing measured.
        (
            "always split, rust",
            &always,
            facts(RUST, Asked::Not, 2_000, None),
            Step::Split { size: 800 },
        ),
        (
            "always split, unknown",
            &always,
            facts(None, Asked::Not, 2_000, None),
            Step::Query,
        ),
        (
            "always split, java 4",
            &always,
            facts(java4(), ok, 2_000, None),
            AUTO_4X,
        ),
        (
            "always split, at split_size",
            &always,
            facts(RUST, Asked::Not, 800, None),
            whole(None),
        ),
        // Compressed where the form is known; learnt first where it is not.
        (
            "compressed, unknown",
            &compressed,
            facts(None, Asked::Not, 150_000, None),
            Step::Query,
        ),
        (
            "compressed, rust",
            &compressed,
            facts(RUST, ok, 150_000, None),
            whole(Some(CompressionForm::RawDeflate)),
        ),
        (
            "compressed, java 5",
            &compressed,
            facts(java5(), Asked::Not, 10, None),
            whole(Some(CompressionForm::Zlib5x)),
        ),
        (
            "compressed, java 4",
            &compressed,
            facts(java4(), Asked::Not, 10, None),
            whole(Some(CompressionForm::Zlib4x)),
        ),
        (
            "compressed, no answer, small",
            &compressed,
            facts(None, Asked::NoAnswer, 10, None),
            whole(None),
        ),
        (
            "compressed, no answer, too big",
            &compressed,
            facts(None, Asked::NoAnswer, 150_000, Some(big)),
            Step::Split { size: fit_16 },
        ),
        // The data-version check (not forced, not oneway).
        (
            "check, not asked",
            &check,
            facts(RUST, Asked::Not, 10, None),
            Step::Query,
        ),
        (
            "check, current",
            &check,
            facts(RUST, cur, 10, None),
            Step::Current,
        ),
        (
            "check, changed",
            &check,
            facts(RUST, ok, 10, None),
            whole(None),
        ),
        (
            "check, no answer",
            &check,
            facts(None, Asked::NoAnswer, 10, None),
            whole(None),
        ),
        (
            "check, no answer, too big",
            &check,
            facts(None, Asked::NoAnswer, 150_000, Some(big)),
            Step::Split { size: fit_16 },
        ),
        (
            "check, changed, too big",
            &check,
            facts(RUST, ok, 150_000, None),
            Step::MeasurePlain,
        ),
        // Oneway never waits for a check; forced rounds ignore a current answer.
        (
            "oneway",
            &check_oneway,
            facts(RUST, Asked::Not, 10, None),
            whole(None),
        ),
        (
            "forced, current",
            &def,
            facts(RUST, cur, 10, None),
            whole(None),
        ),
    ];
    for (name, o, f, want) in cases {
        assert_eq!(plan(o, &f), want, "{name}");
    }
}

/// Runs the plan to the end as the fan-out does, against a peer that answers as `answer`
/// says; returns the steps taken.
fn drive(
    opts: &RegisterOptions,
    start: Option<PeerInfo>,
    answer: Option<Option<PeerInfo>>,
    topics: usize,
    len: usize,
) -> Vec<Step> {
    let mut f = facts(start, Asked::Not, topics, None);
    let mut steps = Vec::new();
    for _ in 0..10 {
        let s = plan(opts, &f);
        steps.push(s);
        match s {
            Step::Query => match answer {
                Some(p) => {
                    f.asked = Asked::Answered { current: false };
                    f.peer = p;
                }
                None => f.asked = Asked::NoAnswer,
            },
            Step::MeasurePlain => f.plain_len = Some(len),
            _ => return steps,
        }
    }
    panic!("no end: {steps:?}");
}

#[test]
fn at_most_one_query_and_one_measure_per_exchange() {
    let peers = [None, RUST, java5(), java4(), peer(LanguageCode(9), 1)];
    let mut all = Vec::new();
    for compressed in [false, true] {
        for force in [false, true] {
            for oneway in [false, true] {
                for always_split in [false, true] {
                    all.push(RegisterOptions {
                        compressed,
                        force,
                        oneway,
                        always_split,
                        ..opts()
                    });
                }
            }
        }
    }
    for o in &all {
        for start in peers {
            // The answer: none at all (the old code asked a second time here), or a peer.
            for answer in [None, Some(None), Some(RUST), Some(java4())] {
                for (topics, len) in [(10, 2_000), (150_000, 28_500_000), (2_000, 400_000)] {
                    let steps = drive(o, start, answer, topics, len);
                    let count = |s: Step| steps.iter().filter(|x| **x == s).count();
                    assert!(
                        count(Step::Query) <= 1,
                        "{o:?} {start:?} {answer:?}: {steps:?}"
                    );
                    assert!(count(Step::MeasurePlain) <= 1, "{o:?} {start:?}: {steps:?}");
                    if let Some(Step::Whole { form: None, .. }) = steps.last() {
                        // A plain body goes out whole only where it fits.
                        let fits = !o.always_split && len + HEADER_ROOM <= o.max_frame;
                        assert!(topics <= o.split_size || fits, "{o:?}: {steps:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_failed_first_query_is_not_repeated_before_a_split() {
    // The data-version check asks first; with no answer the form stays unknown, and the old
    // code asked again before splitting (two QUERY_DATA_VERSION in one exchange).
    let check = RegisterOptions {
        force: false,
        ..opts()
    };
    assert_eq!(
        drive(&check, None, None, 150_000, 28_500_000),
        [
            Step::Query,
            Step::MeasurePlain,
            Step::Split {
                size: fitting_batch(28_500_000, 150_000, 16 * MIB)
            }
        ]
    );
    let compressed = RegisterOptions {
        compressed: true,
        ..opts()
    };
    assert_eq!(
        drive(&compressed, None, None, 150_000, 28_500_000),
        [
            Step::Query,
            Step::MeasurePlain,
            Step::Split {
                size: fitting_batch(28_500_000, 150_000, 16 * MIB)
            }
        ]
    );
    // Where nothing was asked yet, an unknown peer is asked once before splitting.
    assert_eq!(
        drive(&opts(), None, Some(java4()), 150_000, 28_500_000),
        [Step::MeasurePlain, Step::Query, AUTO_4X]
    );
}

#[test]
fn batches_fit_three_quarters_of_a_frame_and_at_most_4_mib() {
    // 16 MiB frames: the 4 MiB cap decides (a round holds one batch: its memory bound).
    assert_eq!(fitting_batch(28_500_000, 150_000, 16 * MIB), 4 * MIB / 190);
    // 4 MiB frames: three quarters of the frame decides.
    assert_eq!(
        fitting_batch(28_500_000, 150_000, 4 * MIB),
        (4 * MIB - HEADER_ROOM) / 4 * 3 / 190
    );
    // Never zero, whatever the sizes.
    assert_eq!(fitting_batch(10 * MIB, 1, 1024), 1);
    assert_eq!(fitting_batch(0, 0, 16 * MIB), 4 * MIB);
}

#[test]
fn a_split_never_sends_a_batch_of_one_topic() {
    // split_size = 1 (broker.conf allows it): batches of two, so the first registration of
    // an unlisted id never carries exactly one topic.
    let mut o = opts();
    o.split_size = 1;
    o.always_split = true;
    o.force = true;
    assert_eq!(
        plan(&o, &facts(java5(), Asked::Answered { current: false }, 3, None)),
        Step::Split { size: 2 }
    );
    // Topics so big that one fits a frame: still two.
    assert_eq!(fitting_batch(64 << 20, 2, 16 << 20), 1);
    o.always_split = false;
    let f = facts(java5(), Asked::Answered { current: false }, 3, Some(64 << 20));
    assert_eq!(plan(&o, &f), Step::Split { size: 2 });
}

#[test]
fn no_split_goes_toward_a_namesrv_that_deletes_by_registration() {
    let mut o = opts();
    o.always_split = true;
    o.split_size = 100;
    let mut f = facts(RUST, Asked::Answered { current: false }, 1_000, None);
    // Before a split: its configuration is asked.
    f.deletes = Deletes::Unknown;
    assert_eq!(plan(&o, &f), Step::AskConfig);
    // It deletes: the table whole (measured first), as it fits a frame.
    f.deletes = Deletes::Yes;
    assert_eq!(plan(&o, &f), Step::MeasurePlain);
    f.plain_len = Some(200_000);
    assert_eq!(plan(&o, &f), whole(None));
    // Too big for a frame: compressed in its form; with no form known, nothing.
    f.plain_len = Some(64 * MIB);
    assert_eq!(
        plan(&o, &f),
        Step::Whole {
            form: Some(CompressionForm::RawDeflate),
            sent_as: SentAs::AutoCompressed
        }
    );
    f.peer = Some(PeerInfo {
        language: LanguageCode::OTHER,
        version: 0,
    });
    assert_eq!(plan(&o, &f), Step::Unsplittable);
    // Keeps them: split as before.
    f.deletes = Deletes::No;
    assert_eq!(plan(&o, &f), Step::Split { size: 100 });
}
