use super::*;

fn task(bucket: &str, key: &str, version_id: Option<&str>) -> Task {
    Task {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version_id.map(str::to_string),
        size: None,
    }
}

fn awkward_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "plain/key.txt",
        "with space",
        "plus+sign",
        "100% done",
        "a,b,c",
        "say \"hi\"",
        "back\\slash",
        "unicode/été/日本語/🦀",
        "line\nbreak\r\ttab",
        "\u{7f}del and \u{2028} separator",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    keys.push((0u8..0x20).map(char::from).collect());
    keys
}

#[test]
fn body_has_the_documented_shape() {
    let batch = TaskBatch {
        job_id: "job-1".into(),
        batch_id: "b-00000000".into(),
        offset: 0,
        deferral: None,
        tasks: vec![task("bk", "a key", None), task("bk", "k2", Some("v1"))],
    };
    assert_eq!(
        batch.to_body(),
        r#"{"JobId":"job-1","BatchId":"b-00000000","Tasks":[["bk","a key"],["bk","k2","v1"]]}"#
    );
}

#[test]
fn a_continuation_carries_the_rest_of_the_batch_and_its_offset() {
    let batch = TaskBatch {
        job_id: "j".into(),
        batch_id: "b00000003".into(),
        offset: 0,
        deferral: None,
        tasks: (0..5).map(|i| task("bk", &format!("k{i}"), None)).collect(),
    };
    let rest = batch.rest_from(3);
    assert_eq!((rest.offset, rest.tasks.len(), rest.end()), (3, 2, 5));
    assert_eq!(rest.tasks[0].key, "k3");
    let body = rest.to_body();
    assert_eq!(
        body,
        r#"{"JobId":"j","BatchId":"b00000003","Offset":3,"Tasks":[["bk","k3"],["bk","k4"]]}"#
    );
    assert_eq!(rest.body_len(), body.len());
    assert_eq!(TaskBatch::from_body(&body).unwrap(), rest);
    // A continuation of a continuation counts from the batch's start, not the message's.
    let last = rest.rest_from(4);
    assert_eq!((last.offset, last.tasks.len()), (4, 1));
    assert_eq!(
        rest.rest_from(1),
        rest,
        "tasks before the offset are not in the message"
    );
    assert!(batch.rest_from(9).tasks.is_empty());
}

#[test]
fn a_deferred_copy_carries_its_id_and_its_continuations_do_not() {
    let copy = TaskBatch {
        job_id: "j".into(),
        batch_id: "b00000003".into(),
        offset: 2,
        tasks: (2..5).map(|i| task("bk", &format!("k{i}"), None)).collect(),
        deferral: Some("9f1c".into()),
    };
    let body = copy.to_body();
    assert_eq!(
        body,
        r#"{"JobId":"j","BatchId":"b00000003","Offset":2,"Deferral":"9f1c","Tasks":[["bk","k2"],["bk","k3"],["bk","k4"]]}"#
    );
    assert_eq!(copy.body_len(), body.len());
    assert_eq!(TaskBatch::from_body(&body).unwrap(), copy);
    assert_eq!(copy.rest_from(3).deferral, None);
}

#[test]
fn body_round_trips_awkward_keys() {
    let tasks: Vec<Task> = awkward_keys()
        .iter()
        .enumerate()
        .map(|(i, k)| {
            task(
                "bucket",
                k,
                (i % 2 == 0).then_some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"),
            )
        })
        .collect();
    let batch = TaskBatch {
        job_id: "job \"x\"".into(),
        batch_id: "p/00000007".into(),
        offset: 0,
        deferral: None,
        tasks,
    };
    let body = batch.to_body();
    assert_eq!(TaskBatch::from_body(&body).unwrap(), batch);
    // serde_json reads exactly the same strings.
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["Tasks"][7][1], "unicode/été/日本語/🦀");
}

#[test]
fn escaping_matches_serde_json_exactly() {
    for key in awkward_keys() {
        let mut ours = String::new();
        push_json_str(&mut ours, &key);
        let theirs = serde_json::to_string(&key).unwrap();
        assert_eq!(ours, theirs, "key {key:?}");
        assert_eq!(json_str_len(&key), theirs.len(), "key {key:?}");
    }
}

#[test]
fn body_len_is_the_exact_length() {
    let batch = TaskBatch {
        job_id: "j".into(),
        batch_id: "b".into(),
        offset: 0,
        deferral: None,
        tasks: awkward_keys()
            .iter()
            .map(|k| task("b", k, Some("v\"")))
            .collect(),
    };
    assert_eq!(batch.body_len(), batch.to_body().len());
    let empty = TaskBatch {
        tasks: vec![],
        ..batch
    };
    assert_eq!(empty.body_len(), empty.to_body().len());
}

#[test]
fn from_body_rejects_malformed_bodies_with_reasons() {
    let cases = [
        ("not json", "not {\"JobId\""),
        (r#"{"JobId":"j","Tasks":[]}"#, "BatchId"),
        (
            r#"{"JobId":"j","BatchId":"b","Tasks":[["bk"]]}"#,
            "task 0 has 1 elements",
        ),
        (
            r#"{"JobId":"j","BatchId":"b","Tasks":[["bk","k"],["bk","k","v","x"]]}"#,
            "task 1 has 4 elements",
        ),
        (
            r#"{"JobId":"j","BatchId":"b","Tasks":[["","k"]]}"#,
            "empty bucket or key",
        ),
        (
            r#"{"JobId":"j","BatchId":"b","Tasks":[["bk",7]]}"#,
            "invalid type",
        ),
    ];
    for (body, expected) in cases {
        match TaskBatch::from_body(body) {
            Err(Error::Message(reason)) => {
                assert!(reason.contains(expected), "{body}: {reason}")
            }
            other => panic!("{body}: expected Error::Message, got {other:?}"),
        }
    }
}

fn pack_all(tasks: Vec<Task>, max: usize) -> Vec<TaskBatch> {
    let mut packer = BatchPacker::new("job-42", "job-42/", max);
    let mut batches: Vec<TaskBatch> = tasks.into_iter().filter_map(|t| packer.push(t)).collect();
    let emitted = packer.batches_emitted();
    assert_eq!(emitted, batches.len() as u64);
    batches.extend(packer.finish());
    batches
}

fn varied_tasks(n: usize) -> Vec<Task> {
    let keys = awkward_keys();
    (0..n)
        .map(|i| {
            let key = format!("{}/{}{}", i, keys[i % keys.len()], "x".repeat(i % 37));
            task("bucket", &key, (i % 3 == 0).then_some("ver\\sion"))
        })
        .collect()
}

#[test]
fn packed_bodies_fit_and_are_as_full_as_possible() {
    let tasks = varied_tasks(2000);
    let max = 4096;
    let batches = pack_all(tasks.clone(), max);
    assert!(batches.len() > 10);
    for (i, batch) in batches.iter().enumerate() {
        let body = batch.to_body();
        assert!(body.len() <= max, "batch {i} is {} bytes", body.len());
        if let Some(next) = batches.get(i + 1) {
            let mut grown = batch.clone();
            grown.tasks.push(next.tasks[0].clone());
            assert!(
                grown.to_body().len() > max,
                "batch {i} could have taken one more task"
            );
        }
    }
    let unpacked: Vec<Task> = batches.into_iter().flat_map(|b| b.tasks).collect();
    assert_eq!(unpacked, tasks, "every task once, in order");
}

#[test]
fn batch_ids_name_their_part_and_sequence() {
    assert_eq!(
        PlanPart::of_batch_id("b00000012"),
        Some((PlanPart::Whole, 12))
    );
    assert_eq!(
        PlanPart::of_batch_id("f000003b00000012"),
        Some((PlanPart::InventoryFile(3), 12))
    );
    assert_eq!(
        PlanPart::of_batch_id("b123456789"),
        Some((PlanPart::Whole, 123_456_789))
    );
    for bad in [
        "",
        "b",
        "b12",
        "x00000001",
        "b0000000x",
        "f3b00000001",
        "b+0000001",
        "b000000012",
        "f0000003b00000001",
    ] {
        assert_eq!(PlanPart::of_batch_id(bad), None, "{bad:?}");
    }
}

#[test]
fn batch_ids_are_deterministic() {
    let first = pack_all(varied_tasks(500), 2048);
    let second = pack_all(varied_tasks(500), 2048);
    assert_eq!(first, second);
    let ids: Vec<&str> = first.iter().map(|b| b.batch_id.as_str()).collect();
    assert_eq!(ids[0], "job-42/00000000");
    assert_eq!(ids[1], "job-42/00000001");
    assert_eq!(ids.last().unwrap(), &format!("job-42/{:08}", ids.len() - 1));
    assert!(first.iter().all(|b| b.job_id == "job-42"));
}

#[test]
fn an_oversized_task_travels_alone() {
    let big = task("bucket", &"k".repeat(500), None);
    let batches = pack_all(
        vec![
            task("bucket", "a", None),
            big.clone(),
            task("bucket", "b", None),
        ],
        200,
    );
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[1].tasks, vec![big]);
    assert_eq!(batches[2].tasks, vec![task("bucket", "b", None)]);
}

#[test]
fn finish_without_tasks_gives_nothing() {
    assert_eq!(BatchPacker::new("j", "p", 1000).finish(), None);
}

#[test]
fn default_limit_packs_hundreds_of_tasks_per_message() {
    let tasks: Vec<Task> = (0..10_000)
        .map(|i| task("my-example-bucket", &format!("{i:0>100}"), None))
        .collect();
    let batches = pack_all(tasks, MAX_MESSAGE_BYTES);
    let full = &batches[..batches.len() - 1];
    assert!(!full.is_empty());
    for batch in full {
        assert!(batch.tasks.len() >= 500, "only {} tasks", batch.tasks.len());
        assert!(batch.to_body().len() <= MAX_MESSAGE_BYTES);
    }
    assert_eq!(batches.iter().map(|b| b.tasks.len()).sum::<usize>(), 10_000);
}
#[test]
fn plan_part_ids_and_prefixes_round_trip() {
    for part in [
        PlanPart::Whole,
        PlanPart::InventoryFile(0),
        PlanPart::InventoryFile(7),
        PlanPart::InventoryFile(1_234_567),
    ] {
        assert_eq!(PlanPart::parse(&part.id()).unwrap(), part);
    }
    assert_eq!(PlanPart::Whole.batch_prefix(), "b");
    assert_eq!(PlanPart::InventoryFile(3).id(), "f000003");
    assert_eq!(PlanPart::InventoryFile(3).batch_prefix(), "f000003b");
    for bad in ["", "f", "x1", "f-1", "f1a", "mm"] {
        assert!(PlanPart::parse(bad).is_err(), "{bad:?}");
    }
}

/// Plans `tasks` in runs like the planner does: each run skips what the checkpoint says is
/// sent, and stops after `per_run` full batches (a batch boundary).
fn plan_in_runs(tasks: &[Task], max: usize, per_run: u64) -> (Vec<TaskBatch>, PlanCheckpoint) {
    let mut checkpoint = PlanCheckpoint::start(PlanPart::InventoryFile(1));
    let mut all = Vec::new();
    let mut runs = 0;
    while !checkpoint.done {
        runs += 1;
        assert!(runs < 10_000, "planning makes no progress");
        let mut packer = BatchPacker::new("j", &checkpoint.part.batch_prefix(), max)
            .resume_at(checkpoint.batches);
        let (mut sent_tasks, mut sent_batches) = (0u64, 0u64);
        let mut stopped = false;
        for task in tasks.iter().skip(checkpoint.next_task as usize) {
            if let Some(batch) = packer.push(task.clone()) {
                sent_tasks += batch.tasks.len() as u64;
                sent_batches += 1;
                all.push(batch);
                if sent_batches == per_run {
                    stopped = true;
                    break;
                }
            }
        }
        if !stopped {
            if let Some(batch) = packer.finish() {
                sent_tasks += batch.tasks.len() as u64;
                sent_batches += 1;
                all.push(batch);
            }
        }
        checkpoint = checkpoint.advanced(sent_tasks, sent_batches, !stopped);
    }
    (all, checkpoint)
}

#[test]
fn resumed_planning_yields_exactly_the_batches_of_one_run() {
    let tasks = varied_tasks(3000);
    let mut one_run = BatchPacker::new("j", "f000001b", 2048);
    let mut expected: Vec<TaskBatch> = tasks
        .iter()
        .filter_map(|t| one_run.push(t.clone()))
        .collect();
    expected.extend(one_run.finish());
    for per_run in [1, 2, 7, 1000] {
        let (batches, checkpoint) = plan_in_runs(&tasks, 2048, per_run);
        assert_eq!(batches, expected, "{per_run} batches per run");
        assert_eq!(checkpoint.next_task, tasks.len() as u64);
        assert_eq!(checkpoint.batches, expected.len() as u64);
    }
}

#[test]
fn totals_are_known_only_when_every_part_is_done() {
    let a = PlanCheckpoint::start(PlanPart::InventoryFile(0)).advanced(10, 2, true);
    let b = PlanCheckpoint::start(PlanPart::InventoryFile(1)).advanced(5, 1, false);
    assert_eq!(planning_totals(&[a.clone(), b.clone()]), None);
    let b = b.advanced(7, 1, true);
    assert_eq!(b.next_task, 12);
    assert_eq!(planning_totals(&[a, b]), Some((22, 4)));
    assert_eq!(planning_totals(&[]), Some((0, 0)));
}

#[test]
fn an_old_copy_of_a_continue_message_is_stale_only_once_the_part_continued() {
    let mut at = PlanCheckpoint::start(PlanPart::Whole).advanced(500, 2, false);
    // The message that continues from here is current; a plain plan request is a wake-up.
    assert!(!at.is_stale(Some(500)));
    assert!(!at.is_stale(None));
    // Saved at 500 but the continue message for 500 not (yet) sent: an older message must
    // still run, or planning could stall.
    assert!(!at.is_stale(Some(200)));
    at.continued_at = Some(500);
    assert!(at.is_stale(Some(200)));
    assert!(!at.is_stale(Some(500)));
}

#[test]
fn slow_operations_pack_fewer_tasks_and_objects_are_counted_by_size() {
    let sized = |i: usize, size: u64| Task {
        size: Some(size),
        ..task("b", &format!("k{i}"), None)
    };
    let limits = BatchLimits {
        max_tasks: Some(3),
        max_object_bytes: Some(100),
    };
    let mut packer = BatchPacker::new("j", "b", MAX_MESSAGE_BYTES).with_limits(limits);
    let mut batches = Vec::new();
    for (i, size) in [10, 20, 30, 40, 90, 5, 200, 1, 1].into_iter().enumerate() {
        batches.extend(packer.push(sized(i, size)));
    }
    batches.extend(packer.finish());
    let keys: Vec<Vec<&str>> = batches
        .iter()
        .map(|b| b.tasks.iter().map(|t| t.key.as_str()).collect())
        .collect();
    // Three tasks at most; 40 + 90 exceed 100; an object larger than the limit goes alone.
    assert_eq!(
        keys,
        vec![
            vec!["k0", "k1", "k2"],
            vec!["k3"],
            vec!["k4", "k5"],
            vec!["k6"],
            vec!["k7", "k8"]
        ]
    );
    let tagging = crate::job::JobOperation::S3DeleteObjectTagging(Default::default());
    assert_eq!(BatchLimits::of(&tagging), BatchLimits::default());
    assert!(!BatchLimits::of(&tagging).wants_sizes());
}
