//! The sorts Redis's GEO replies go through, ported so elements with equal keys come out in
//! Redis's order: glibc's `qsort` (a top-down merge sort, `msort.c`) and Redis's `pqsort`
//! (Bentley & McIlroy quicksort that only sorts the part holding a range of positions).
//! `cmp` returns <0, 0, >0 as a C comparator does.

use std::cmp::Ordering;

/// glibc `qsort`: stable merge sort, halves split at n/2, left element taken on `cmp <= 0`.
pub fn qsort<T, F: Fn(&T, &T) -> i32>(v: &mut Vec<T>, cmp: F) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    let mut tmp = vec![0; v.len()];
    msort(&mut order, &mut tmp, &|a, b| cmp(&v[*a], &v[*b]));
    let mut slots: Vec<Option<T>> = std::mem::take(v).into_iter().map(Some).collect();
    v.extend(
        order
            .into_iter()
            .map(|i| slots[i].take().expect("a permutation")),
    );
}

fn msort<F: Fn(&usize, &usize) -> i32>(b: &mut [usize], tmp: &mut [usize], cmp: &F) {
    let n = b.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    msort(&mut b[..n1], tmp, cmp);
    msort(&mut b[n1..], tmp, cmp);
    let (mut i, mut j, mut k) = (0, n1, 0);
    while i < n1 && j < n {
        if cmp(&b[i], &b[j]) <= 0 {
            tmp[k] = b[i];
            i += 1;
        } else {
            tmp[k] = b[j];
            j += 1;
        }
        k += 1;
    }
    // What is left of the right half is already in place.
    while i < n1 {
        tmp[k] = b[i];
        i += 1;
        k += 1;
    }
    b[..k].copy_from_slice(&tmp[..k]);
}

/// Redis's `pqsort`: Bentley & McIlroy's quicksort that only recurses into partitions
/// overlapping the elements `lrange..=rrange`, step for step, so ties land where Redis puts
/// them (SORT ... LIMIT, GEO ... COUNT). The range is signed as C's pointer range is: SORT's
/// `LIMIT 0 0` asks for `0..=-1`.
pub fn pqsort<T>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> Ordering, lrange: i64, rrange: i64) {
    let n = v.len();
    pq(v, 0, n, cmp, lrange, rrange);
}

fn med3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &dyn Fn(&T, &T) -> Ordering) -> usize {
    let lt = |x: usize, y: usize| cmp(&v[x], &v[y]) == Ordering::Less;
    let gt = |x: usize, y: usize| cmp(&v[x], &v[y]) == Ordering::Greater;
    if lt(a, b) {
        if lt(b, c) {
            b
        } else if lt(a, c) {
            c
        } else {
            a
        }
    } else if gt(b, c) {
        b
    } else if lt(a, c) {
        a
    } else {
        c
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for k in 0..n {
        v.swap(a + k, b + k);
    }
}

fn pq<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &dyn Fn(&T, &T) -> Ordering,
    lrange: i64,
    rrange: i64,
) {
    // Whether the partition [lo, lo + len) lies wholly before or after the wanted range.
    let outside = |lo: usize, len: usize| {
        let (lo, hi) = (lo as i64, (lo + len) as i64);
        (lrange < lo && rrange < lo) || (lrange >= hi && rrange >= hi)
    };
    loop {
        if n < 7 {
            for pm in a + 1..a + n {
                let mut pl = pm;
                while pl > a && cmp(&v[pl - 1], &v[pl]) == Ordering::Greater {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(a, pm);
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let c = cmp(&v[pb], &v[a]);
                if c == Ordering::Greater {
                    break;
                }
                if c == Ordering::Equal {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&v[pc], &v[a]);
                if c == Ordering::Less {
                    break;
                }
                if c == Ordering::Equal {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let r = pb - pa;
        if r > 1 && !outside(a, r) {
            pq(v, a, r, cmp, lrange, rrange);
        }
        let r = pd - pc;
        if r <= 1 {
            return;
        }
        a = pn - r;
        n = r;
        if outside(a, n) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_key(a: &(i32, usize), b: &(i32, usize)) -> i32 {
        (a.0 > b.0) as i32 - (a.0 < b.0) as i32
    }

    fn by_key_ord(a: &(i32, usize), b: &(i32, usize)) -> Ordering {
        a.0.cmp(&b.0)
    }

    #[test]
    fn qsort_is_stable() {
        let mut v: Vec<(i32, usize)> = [3, 1, 3, 2, 1, 3].iter().copied().zip(0..).collect();
        qsort(&mut v, by_key);
        assert_eq!(v, vec![(1, 1), (1, 4), (2, 3), (3, 0), (3, 2), (3, 5)]);
    }

    #[test]
    fn pqsort_sorts_the_range() {
        let mut seed = 12345u64;
        for n in [1usize, 5, 7, 8, 30, 41, 100, 500] {
            let mut v: Vec<(i32, usize)> = (0..n)
                .map(|i| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (((seed >> 33) % 20) as i32, i)
                })
                .collect();
            let mut sorted: Vec<i32> = v.iter().map(|x| x.0).collect();
            sorted.sort();
            let k = n.div_ceil(3);
            pqsort(&mut v, &by_key_ord, 0, k as i64 - 1);
            let got: Vec<i32> = v[..k].iter().map(|x| x.0).collect();
            assert_eq!(got, sorted[..k]);
            let mut full = v.clone();
            pqsort(&mut full, &by_key_ord, 0, n as i64 - 1);
            assert!(full.windows(2).all(|w| w[0].0 <= w[1].0));
        }
    }
}
