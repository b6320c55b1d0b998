//! [`Buckets`]: latency counts laid out exactly as an HDR histogram of
//! 1 µs to [`MAX_LATENCY_US`] with 3 significant digits lays out its
//! counts, recorded with one atomic add and no lock, and read back as an
//! [`hdrhistogram::Histogram`] (which computes the percentiles).
//!
//! Recording into an `hdrhistogram::Histogram` needs `&mut`, so a shared
//! one sits behind a lock: two atomic operations per request for the lock,
//! and the histogram's own bookkeeping (total, minimum, maximum) on top.
//! Here a request costs the index computation and one relaxed add; the
//! minimum, maximum and total are found when the counts are read, which is
//! rare.

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Highest latency tracked (longer ones are clamped): an hour, so a
/// blocking command waiting long still lands in the last bucket.
pub(super) const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Significant digits kept.
const SIGNIFICANT_DIGITS: u8 = 3;
/// `log2` of the sub-buckets per bucket: the smallest power of two of at
/// least `2 * 10^3` is `2^11`.
const SUB_BUCKET_COUNT_MAGNITUDE: u32 = 11;
const SUB_BUCKET_HALF_COUNT_MAGNITUDE: u32 = SUB_BUCKET_COUNT_MAGNITUDE - 1;
const SUB_BUCKET_HALF_COUNT: u64 = 1 << SUB_BUCKET_HALF_COUNT_MAGNITUDE;
const SUB_BUCKET_MASK: u64 = (1 << SUB_BUCKET_COUNT_MAGNITUDE) - 1;
/// With a lowest value of 1 the unit magnitude is 0, so this is `64 - 11`.
const LEADING_ZERO_COUNT_BASE: u32 = 64 - SUB_BUCKET_COUNT_MAGNITUDE;

/// How many counts the layout has for values up to [`MAX_LATENCY_US`].
const fn counts_len() -> usize {
    let mut smallest_untrackable = 1u64 << SUB_BUCKET_COUNT_MAGNITUDE;
    let mut buckets = 1u64;
    while smallest_untrackable <= MAX_LATENCY_US {
        smallest_untrackable <<= 1;
        buckets += 1;
    }
    ((buckets + 1) << SUB_BUCKET_HALF_COUNT_MAGNITUDE) as usize
}

const COUNTS_LEN: usize = counts_len();

/// The index of the count that `value` (1 ..= [`MAX_LATENCY_US`]) goes to.
fn index_of(value: u64) -> usize {
    let bucket = LEADING_ZERO_COUNT_BASE - (value | SUB_BUCKET_MASK).leading_zeros();
    let sub_bucket = value >> bucket;
    (((bucket as u64 + 1) << SUB_BUCKET_HALF_COUNT_MAGNITUDE) + sub_bucket - SUB_BUCKET_HALF_COUNT) as usize
}

/// The lowest value that goes to count `index`.
fn value_of(index: usize) -> u64 {
    let index = index as u64;
    let bucket = (index >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) as i64 - 1;
    let sub_bucket = (index & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT;
    match u32::try_from(bucket) {
        Ok(bucket) => sub_bucket << bucket,
        Err(_) => sub_bucket - SUB_BUCKET_HALF_COUNT,
    }
}

/// Latency counts in an HDR histogram's layout.
pub(super) struct Buckets {
    counts: Box<[AtomicU64]>,
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buckets").field("total", &self.total()).finish()
    }
}

impl Buckets {
    /// Empty counts (about 190 KB).
    pub(super) fn new() -> Self {
        Buckets {
            counts: (0..COUNTS_LEN).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts one latency, clamped to 1 ..= [`MAX_LATENCY_US`].
    pub(super) fn record(&self, micros: u64) {
        let index = index_of(micros.clamp(1, MAX_LATENCY_US));
        self.counts[index].fetch_add(1, Ordering::Relaxed);
    }

    /// How many latencies were counted.
    pub(super) fn total(&self) -> u64 {
        self.counts
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum()
    }

    /// Adds these counts to `histogram`, which must have the same bounds
    /// ([`Buckets::histogram`]).
    pub(super) fn add_to(&self, histogram: &mut Histogram<u64>) {
        for (index, count) in self.counts.iter().enumerate() {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                histogram.saturating_record_n(value_of(index), count);
            }
        }
    }

    /// An empty histogram with the bounds these counts are laid out for.
    pub(super) fn histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGNIFICANT_DIGITS).expect("valid histogram bounds")
    }

    /// Zeroes every count.
    pub(super) fn reset(&self) {
        for count in self.counts.iter() {
            count.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_layout_is_the_histograms() {
        let histogram = Buckets::histogram();
        assert_eq!(histogram.distinct_values(), COUNTS_LEN);
        for index in 0..COUNTS_LEN {
            let value = value_of(index);
            assert_eq!(histogram.lowest_equivalent(value), value, "index {index}");
            if (1..=MAX_LATENCY_US).contains(&value) {
                assert_eq!(index_of(value), index, "value {value}");
            }
        }
    }

    proptest! {
        /// Whatever is recorded, the counts read back into a histogram
        /// give what recording straight into one gives.
        #[test]
        fn reads_back_as_recording_directly(values in proptest::collection::vec(
            prop_oneof![1u64..2_000, 1u64..100_000, 1u64..=MAX_LATENCY_US, Just(0u64), Just(u64::MAX)],
            1..200,
        )) {
            let buckets = Buckets::new();
            let mut direct = Buckets::histogram();
            for &value in &values {
                buckets.record(value);
                direct.saturating_record(value.clamp(1, MAX_LATENCY_US));
            }
            let mut read = Buckets::histogram();
            buckets.add_to(&mut read);
            prop_assert_eq!(buckets.total(), values.len() as u64);
            prop_assert_eq!(read.len(), direct.len());
            prop_assert_eq!(read.min(), direct.min());
            prop_assert_eq!(read.max(), direct.max());
            prop_assert_eq!(read.mean(), direct.mean());
            for quantile in [0.0, 0.5, 0.95, 0.99, 0.999, 1.0] {
                prop_assert_eq!(read.value_at_quantile(quantile), direct.value_at_quantile(quantile));
            }
        }
    }
}
