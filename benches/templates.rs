//! E-mail rendering: `cargo bench --bench templates`.
//! Targets: ≥ 20k renders/s of a typical template (subject + text + HTML through the shared
//! layout); html2text of a typical e-mail for the preview pane ≤ 1 ms.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tykwatch::templates::go::GoTemplate;
use tykwatch::templates::{QuotaNotice, Templates, html_to_terminal_text};

fn render(c: &mut Criterion) {
    let t = Templates::shipped();
    let sample = t.sample("quota_threshold").expect("shipped sample");
    let notice: QuotaNotice = serde_json::from_value(sample).expect("sample is a QuotaNotice");
    // Warm the template cache: the first render compiles.
    t.render("quota_threshold", &notice).expect("renders");

    let mut g = c.benchmark_group("templates");
    g.throughput(Throughput::Elements(1));
    g.bench_function("render quota_threshold (subject+text+html)", |b| {
        b.iter(|| {
            black_box(
                t.render("quota_threshold", black_box(&notice))
                    .expect("renders"),
            )
        })
    });
    let go = GoTemplate::tyk_monitor().expect("monitor template");
    let event = serde_json::json!({
        "Type": "TriggerExceeded",
        "Meta": {"Message": "Quota trigger reached", "OrgID": "5e9d9544a1dcd60001d0ed20",
                 "Key": "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d",
                 "TriggerLimit": 80.0},
        "TimeStamp": "2025-03-01 10:25:00 +0000 UTC"
    });
    g.bench_function("render tyk monitor webhook body", |b| {
        b.iter(|| black_box(go.render(black_box(&event)).expect("renders")))
    });
    let html = t.render("quota_threshold", &notice).expect("renders").html;
    g.bench_function("html2text quota_threshold at 100 columns", |b| {
        b.iter(|| black_box(html_to_terminal_text(black_box(&html), 100).expect("lays out")))
    });
    g.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
