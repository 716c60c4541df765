//! The sorts Redis's GEO replies go through, ported so elements with equal keys come out in
//! Redis's order: glibc's `qsort` (a top-down merge sort, `msort.c`) and Redis's `pqsort`
//! (Bentley & McIlroy quicksort that only sorts the part holding a range of positions).
//! `cmp` returns <0, 0, >0 as a C comparator does.

use std::cmp::min;

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

/// Redis `pqsort(a, n, es, cmp, lrange, rrange)`: afterwards positions lrange..=rrange hold
/// what a full sort would put there.
pub fn pqsort<T, F: Fn(&T, &T) -> i32>(v: &mut [T], cmp: F, lrange: usize, rrange: usize) {
    pq(v, 0, v.len(), &cmp, lrange, rrange);
}

fn med3<T, F: Fn(&T, &T) -> i32>(v: &[T], a: usize, b: usize, c: usize, cmp: &F) -> usize {
    if cmp(&v[a], &v[b]) < 0 {
        if cmp(&v[b], &v[c]) < 0 {
            b
        } else if cmp(&v[a], &v[c]) < 0 {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) > 0 {
        b
    } else if cmp(&v[a], &v[c]) < 0 {
        a
    } else {
        c
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

/// Whether a segment [start, start + len) may hold a position of the wanted range.
fn overlaps(start: usize, len: usize, l: usize, r: usize) -> bool {
    !((l < start && r < start) || (l >= start + len && r >= start + len))
}

/// `_pqsort` on positions [a, a + n) of `v`, in element units instead of bytes.
fn pq<T, F: Fn(&T, &T) -> i32>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &F,
    l: usize,
    r: usize,
) {
    loop {
        if n < 7 {
            for pm in a + 1..a + n {
                let mut pl = pm;
                while pl > a && cmp(&v[pl - 1], &v[pl]) > 0 {
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
        // pc and pd may step one below pb; kept as signed positions.
        let (mut pc, mut pd) = ((a + n - 1) as isize, (a + n - 1) as isize);
        loop {
            while pb as isize <= pc {
                let c = cmp(&v[pb], &v[a]);
                if c > 0 {
                    break;
                }
                if c == 0 {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb as isize <= pc {
                let c = cmp(&v[pc as usize], &v[a]);
                if c < 0 {
                    break;
                }
                if c == 0 {
                    v.swap(pc as usize, pd as usize);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb as isize > pc {
                break;
            }
            v.swap(pb, pc as usize);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let s = min(pa - a, pb - pa);
        vecswap(v, a, pb - s, s);
        let s = min((pd - pc) as usize, pn - pd as usize - 1);
        vecswap(v, pb, pn - s, s);
        let s = pb - pa;
        if s > 1 && overlaps(a, s, l, r) {
            pq(v, a, s, cmp, l, r);
        }
        let s = (pd - pc) as usize;
        if s > 1 {
            a = pn - s;
            n = s;
            if overlaps(a, n, l, r) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_key(a: &(i32, usize), b: &(i32, usize)) -> i32 {
        (a.0 > b.0) as i32 - (a.0 < b.0) as i32
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
            pqsort(&mut v, by_key, 0, k - 1);
            let got: Vec<i32> = v[..k].iter().map(|x| x.0).collect();
            assert_eq!(got, sorted[..k]);
            let mut full = v.clone();
            pqsort(&mut full, by_key, 0, n - 1);
            assert!(full.windows(2).all(|w| w[0].0 <= w[1].0));
        }
    }
}
