//! The dry run as the CLI prints it.

use super::*;

/// The dry run as the CLI prints it.
pub fn render(answer: &DryRunJobResponse) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Dry run of {} over {}: no job created, no object touched.",
        answer.operation, answer.manifest
    );
    let _ = writeln!(out, "Tasks:    {}", thousands(answer.total_number_of_tasks));
    let _ = writeln!(
        out,
        "Bytes:    {} (sizes known for {} of {} tasks)",
        bytes(answer.total_bytes),
        thousands(answer.tasks_with_size),
        thousands(answer.total_number_of_tasks)
    );
    let _ = writeln!(out, "Batches:  {}", thousands(answer.batches));
    let _ = writeln!(out, "First {} tasks:", answer.first_tasks.len());
    for task in &answer.first_tasks {
        let version = task
            .version_id
            .as_deref()
            .map(|v| format!(" version {v}"))
            .unwrap_or_default();
        let size = task
            .size
            .map(|s| format!(" ({})", bytes(s)))
            .unwrap_or_default();
        let _ = writeln!(out, "  s3://{}/{}{version}{size}", task.bucket, task.key);
    }
    for (title, of) in [
        ("Requests of the tasks:", RequestsOf::Tasks),
        ("Requests of batchops itself:", RequestsOf::Batchops),
    ] {
        let _ = writeln!(out, "{title}");
        for r in answer.requests.iter().filter(|r| r.of == of && r.count > 0) {
            let name = format!("{} {}", r.service, r.request);
            let _ = writeln!(out, "  {name:<48} {:>15}", thousands(r.count));
        }
    }
    render_cost(&mut out, &answer.cost);
    let d = &answer.duration;
    let why = match d.max_tasks_per_second {
        Some(limit) if d.limited_by == "MaxTasksPerSecond" => {
            format!("limited by the job's rate limit of {limit} tasks/s")
        }
        _ => format!(
            "limited by concurrency: {} tasks in flight",
            d.tasks_in_flight
        ),
    };
    let _ = writeln!(
        out,
        "Estimated duration: {} at {} tasks/s ({why})",
        seconds(d.seconds),
        thousands(d.tasks_per_second.round() as u64)
    );
    for note in &answer.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    out.trim_end().to_string()
}

pub(super) fn render_cost(out: &mut String, cost: &CostEstimate) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "{:<46} {:>10} {:>21}",
        format!("Estimated cost ({} list prices)", cost.region),
        "batchops",
        "S3 Batch Operations"
    );
    let theirs = |item: &str| {
        cost.s3_batch_operations
            .as_ref()
            .and_then(|lines| lines.iter().find(|l| l.item == item))
            .map_or("-".to_string(), |l| usd(l.usd))
    };
    let mut items: Vec<&str> = cost.batchops.iter().map(|l| l.item.as_str()).collect();
    if let Some(lines) = &cost.s3_batch_operations {
        for l in lines {
            if !items.contains(&l.item.as_str()) {
                items.push(&l.item);
            }
        }
    }
    for item in items {
        let ours = cost
            .batchops
            .iter()
            .find(|l| l.item == item)
            .map_or("-".to_string(), |l| usd(l.usd));
        let _ = writeln!(out, "  {item:<44} {ours:>10} {:>21}", theirs(item));
    }
    let _ = writeln!(
        out,
        "  {:<44} {:>10} {:>21}",
        "Total",
        usd(cost.batchops_total_usd),
        cost.s3_batch_operations_total_usd
            .map_or("-".to_string(), usd)
    );
}

pub(super) fn usd(amount: f64) -> String {
    if amount == 0.0 {
        "$0".into()
    } else if amount < 0.01 {
        format!("${amount:.6}")
    } else {
        format!("${amount:.2}")
    }
}

pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub(super) fn seconds(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
