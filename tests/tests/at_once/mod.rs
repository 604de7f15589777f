//! A check run for every model at once, a thread each: for the checks that mostly wait
//! (a stop's 2 s grace, a stall, a flood's seconds), so that the models' waits overlap
//! instead of adding up. Shared by the test files that `mod at_once;` it.

use hello_tests::Models;

/// Runs `check` for each model of `models` on a thread of its own, and once every one
/// has ended, fails with the message of each model that failed.
pub fn in_every_model_at_once(models: Models, check: impl Fn(&'static str) + Sync) {
    let check = &check;
    let failed: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = models
            .into_iter()
            .map(|model| (model, scope.spawn(move || check(model))))
            .collect();
        runs.into_iter()
            .filter_map(|(model, run)| {
                let panic = run.join().err()?;
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic".into());
                Some(format!("{model}: {message}"))
            })
            .collect()
    });
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
