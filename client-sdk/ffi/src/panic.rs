//! The panic boundary: every export runs its body through one of these, so a bug in the SDK
//! becomes `FEIGE_ERR_PANIC` (or a harmless fallback value) instead of unwinding into C.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::FeigeStatus;

/// Runs `f`; its error, or `FEIGE_ERR_PANIC` if it panics, becomes the status code.
pub(crate) fn status(f: impl FnOnce() -> Result<(), FeigeStatus>) -> i32 {
    // AssertUnwindSafe: after a panic the SDK only reports it; shared state uses poison-tolerant
    // locks and stays consistent at every await/lock boundary.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => FeigeStatus::FEIGE_OK as i32,
        Ok(Err(s)) => s as i32,
        Err(_) => FeigeStatus::FEIGE_ERR_PANIC as i32,
    }
}

/// Runs `f`; returns `fallback` if it panics.
pub(crate) fn or<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_a_status() {
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let s = status(|| panic!("boom"));
        let v = or(7, || -> i32 { panic!("boom") });
        std::panic::set_hook(quiet);
        assert_eq!(s, FeigeStatus::FEIGE_ERR_PANIC as i32);
        assert_eq!(v, 7);
        assert_eq!(status(|| Err(FeigeStatus::FEIGE_ERR_NULL)), -1);
        assert_eq!(status(|| Ok(())), 0);
    }
}
