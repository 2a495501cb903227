//! Planning one part: reading its manifest from the checkpoint, packing tasks into batches and
//! sending them, with batch numbers reserved ahead and a new checkpoint saved at every stop.

use super::*;

/// Plans one part from its checkpoint until it ends, the job stops, or time runs out; then
/// saves the new checkpoint and, when time ran out, sends the continue message.
pub(super) async fn plan_part(
    ctx: &Context,
    job: &Job,
    part: PlanPart,
    from_task: Option<u64>,
    stop_at: Option<Instant>,
) -> Result<()> {
    let store = ctx.store();
    let job_id = job.job_id.as_str();
    let Some(from) = store.get_plan_part(job_id, part).await? else {
        warn!(job_id, part = %part.id(), "plan part has no checkpoint; ignored");
        return Ok(());
    };
    if from.is_stale(from_task) {
        info!(job_id, part = %part.id(), ?from_task, next_task = from.next_task, "old copy of a continue message; the part has moved on");
        return Ok(());
    }
    if from.done {
        return complete_if_all_done(ctx, job_id).await;
    }
    let canary = canary_part_limit(ctx, job, part).await?;
    if canary.is_some_and(|limit| from.next_task >= limit) {
        return Box::pin(plan_canary(ctx, job, stop_at)).await;
    }
    let source = recorded_source(job)?;
    let points = ResumePoints::default();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Task>>(8);
    let limits = BatchLimits::of(&job.request.operation);
    let reader = read_part(
        ctx,
        job_id,
        source,
        &from,
        Some(points.clone()),
        limits.wants_sizes(),
        tx,
    );
    let mode = SendMode::Plan {
        stop_at,
        until_task: canary,
    };
    let sender = send_batches(ctx, job_id, &from, limits, rx, mode);
    let (read, sent) = tokio::join!(reader, sender);
    let sent = sent?;
    let done = match (sent.stop, read) {
        // Planning stopped before the end: the reader only saw its channel close.
        (Some(Stop::OutOfTime | Stop::ReplayDone | Stop::CanaryDone), _) => false,
        (Some(Stop::JobStopped), _) => true,
        (None, Ok(_)) if sent.received < from.next_task => {
            let reason = format!(
                "the manifest has {} tasks for plan part {} now, but {} were planned before; was it replaced while the job was planned?",
                sent.received,
                part.id(),
                from.next_task
            );
            fail_active(ctx, job, reason).await?;
            true
        }
        (None, Ok(_)) => true,
        (None, Err(Error::Manifest(reason))) => {
            fail_active(ctx, job, reason).await?;
            true
        }
        (None, Err(other)) => return Err(other),
    };
    let mut to = from.advanced(sent.tasks, sent.batches, done);
    if let Some(point) = points.at_or_before(to.next_task) {
        to.resume = Some(point);
    }
    if !store.advance_plan_part(job_id, &from, &to).await? {
        info!(job_id, part = %part.id(), "another run of this plan part saved its checkpoint first; this run stops");
        return Ok(());
    }
    if sent.stop == Some(Stop::CanaryDone) {
        store
            .release_plan_reservations(job_id, part, to.batches)
            .await?;
        return Box::pin(plan_canary(ctx, job, stop_at)).await;
    }
    if done && canary.is_some() {
        // The next part of the canary (or the closing of the rest, when the job stopped) in an
        // invocation of its own.
        return send_plan_request_for(ctx, job_id, None).await;
    }
    if done {
        return complete_if_all_done(ctx, job_id).await;
    }
    info!(job_id, part = %part.id(), next_task = to.next_task, batches = to.batches, "planning time is up; continuing in a new invocation");
    let request = PlanRequest {
        job_id: job_id.to_string(),
        part: Some(part.id()),
        from_task: Some(to.next_task),
    };
    send_plan_message(ctx, &request).await?;
    store
        .mark_plan_part_continued(job_id, part, to.next_task)
        .await
}

/// Why planning stopped before the end of its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The job was cancelled or is failing.
    JobStopped,
    /// The invocation's time is up: checkpoint and continue.
    OutOfTime,
    /// A replay reached its last batch.
    ReplayDone,
    /// Every task of the job's canary is sent.
    CanaryDone,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum SendMode {
    /// Plan until the part ends, the job stops or `stop_at` passes; while a canary is planned,
    /// up to (not including) the part's task `until_task`.
    Plan {
        stop_at: Option<Instant>,
        until_task: Option<u64>,
    },
    /// Send the batches before sequence number `until` again.
    Replay { until: u64 },
}

#[derive(Debug, Default)]
pub(super) struct Sent {
    /// Tasks sent in this run (in full batches, plus the last one when the part ended).
    pub(super) tasks: u64,
    pub(super) batches: u64,
    /// Tasks received from the reader, including those skipped (sent by earlier runs).
    pub(super) received: u64,
    pub(super) stop: Option<Stop>,
}

/// Batches reserved at a time ahead of sending (one DynamoDB write per this many batches).
pub const RESERVE_WINDOW: u64 = 64;

/// Skips the tasks that `from` says are sent, packs the rest into batches numbered on from
/// `from.batches` and sends them. Planning stops at a batch boundary when time runs out (after
/// at least one batch, so every run makes progress) or when the job stops, and reserves batches
/// in the store before it sends them; a replay sends up to its `until`.
pub(super) async fn send_batches(
    ctx: &Context,
    job_id: &str,
    from: &PlanCheckpoint,
    limits: BatchLimits,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Task>>,
    mode: SendMode,
) -> Result<Sent> {
    let store = ctx.store();
    let mut packer = BatchPacker::new(
        job_id,
        &from.part.batch_prefix(),
        ctx.settings.max_message_bytes,
    )
    .with_limits(limits)
    .resume_at(from.batches);
    let mut reserved = from.reserved.max(from.batches);
    let mut in_flight = FuturesUnordered::new();
    let mut sent = Sent {
        received: stream_start(from),
        ..Sent::default()
    };
    let until_task = match mode {
        SendMode::Plan { until_task, .. } => until_task,
        SendMode::Replay { .. } => None,
    };
    let mut next_task = from.next_task;
    'reading: while let Some(chunk) = rx.recv().await {
        let fresh = skip_sent(chunk, from.next_task, &mut sent.received);
        for task in fresh {
            if until_task.is_some_and(|until| next_task >= until) {
                sent.stop = Some(Stop::CanaryDone);
                break 'reading;
            }
            next_task += 1;
            let Some(batch) = packer.push(task) else {
                continue;
            };
            let seq = from.batches + sent.batches;
            match mode {
                SendMode::Replay { until } if seq >= until => {
                    sent.stop = Some(Stop::ReplayDone);
                    break 'reading;
                }
                SendMode::Plan { .. } if seq >= reserved => {
                    reserved = seq + RESERVE_WINDOW;
                    store
                        .reserve_plan_batches(job_id, from.part, reserved)
                        .await?;
                }
                _ => {}
            }
            while in_flight.len() >= SEND_CONCURRENCY {
                if let Some(result) = in_flight.next().await {
                    result?;
                }
            }
            sent.tasks += batch.tasks.len() as u64;
            in_flight.push(send_batch(ctx, batch));
            sent.batches += 1;
            let SendMode::Plan { stop_at, .. } = mode else {
                continue;
            };
            if stop_at.is_some_and(|at| Instant::now() >= at) {
                sent.stop = Some(Stop::OutOfTime);
                break 'reading;
            }
            if sent.batches.is_multiple_of(STATUS_CHECK_EVERY)
                && store.get_job(job_id).await?.status.stops_execution()
            {
                // Tasks not yet sent are not part of the job: only queued batches are counted.
                sent.stop = Some(Stop::JobStopped);
                break 'reading;
            }
        }
    }
    // Closing the channel tells the reader to stop.
    drop(rx);
    if matches!(sent.stop, None | Some(Stop::CanaryDone)) {
        if let Some(batch) = packer.finish() {
            let seq = from.batches + sent.batches;
            let wanted = match mode {
                SendMode::Replay { until } => seq < until,
                SendMode::Plan { .. } => {
                    if seq >= reserved {
                        store
                            .reserve_plan_batches(job_id, from.part, seq + 1)
                            .await?;
                    }
                    true
                }
            };
            if wanted {
                sent.tasks += batch.tasks.len() as u64;
                in_flight.push(send_batch(ctx, batch));
                sent.batches += 1;
            }
        }
    }
    // Every batch is on the queue before the checkpoint that counts it is saved.
    while let Some(result) = in_flight.next().await {
        result?;
    }
    Ok(sent)
}

/// The tasks of `chunk` that come after the first `already_sent` tasks of the stream, given that
/// `received` tasks came before this chunk (updated to include it).
pub(super) fn skip_sent(mut chunk: Vec<Task>, already_sent: u64, received: &mut u64) -> Vec<Task> {
    let before = *received;
    *received += chunk.len() as u64;
    let skip = already_sent.saturating_sub(before).min(chunk.len() as u64) as usize;
    if skip > 0 {
        chunk.drain(..skip);
    }
    chunk
}

pub(super) async fn send_batch(ctx: &Context, batch: TaskBatch) -> Result<()> {
    crate::queue::send_task_batch(ctx, &batch).await
}
