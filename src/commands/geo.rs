//! GEO commands (Redis's geo.c): a geo set is a sorted set whose scores are 52-bit geohashes
//! (`db/geohash.rs`). GEOADD goes through ZADD as in Redis; searches walk the nine cells
//! around the centre in Redis's order and sort with the C sorts Redis uses (`db/csort.rs`),
//! so unsorted replies, COUNT ANY and ties come out as Redis's do.

use bytes::Bytes;

use super::args::{self, is, syntax, R};
use super::zsets::{self, read, reply};
use super::zsets_ranges::store_result;
use super::{Command, Ctx, Flags as F};
use crate::db::csort;
use crate::db::geohash::{self, Shape, ShapeKind};
use crate::db::zset::ScoreBound;
use crate::db::ZSet;
use crate::protocol::numbers::parse_f64;
use crate::protocol::Reply;

const G: &str = "geo";
const RO: u32 = F::READONLY;
const W: u32 = F::WRITE | F::DENYOOM;

pub const COMMANDS: &[Command] = &[
    Command::new("geoadd", -5, W, geoadd).keys(1, 1, 1).doc(
        G,
        "Add one or more geospatial items in the geospatial index represented using a sorted set",
        "key [NX|XX] [CH] longitude latitude member [longitude latitude member ...]",
    ),
    Command::new("geohash", -2, RO, geohash).keys(1, 1, 1).doc(
        G,
        "Returns members of a geospatial index as standard geohash strings",
        "key [member [member ...]]",
    ),
    Command::new("geopos", -2, RO, geopos).keys(1, 1, 1).doc(
        G,
        "Returns longitude and latitude of members of a geospatial index",
        "key [member [member ...]]",
    ),
    Command::new("geodist", -4, RO, geodist).keys(1, 1, 1).doc(
        G,
        "Returns the distance between two members of a geospatial index",
        "key member1 member2 [M|KM|FT|MI]",
    ),
    Command::new("georadius", -6, W, georadius).keys(1, 1, 1).doc(
        G,
        "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point",
        "key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key] [STOREDIST key]",
    ),
    Command::new("georadius_ro", -6, RO, georadius_ro).keys(1, 1, 1).doc(
        G,
        "A read-only variant for GEORADIUS",
        "key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC]",
    ),
    Command::new("georadiusbymember", -5, W, georadiusbymember).keys(1, 1, 1).doc(
        G,
        "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member",
        "key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key] [STOREDIST key]",
    ),
    Command::new("georadiusbymember_ro", -5, RO, georadiusbymember_ro)
        .keys(1, 1, 1)
        .doc(
            G,
            "A read-only variant for GEORADIUSBYMEMBER",
            "key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC]",
        ),
    Command::new("geosearch", -7, RO, geosearch).keys(1, 1, 1).doc(
        G,
        "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.",
        "key [FROMMEMBER member] [FROMLONLAT longitude latitude] [BYRADIUS radius M|KM|FT|MI] [BYBOX width height M|KM|FT|MI] [ASC|DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]",
    ),
    Command::new("geosearchstore", -8, W, geosearchstore).keys(1, 2, 1).doc(
        G,
        "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.",
        "destination source [FROMMEMBER member] [FROMLONLAT longitude latitude] [BYRADIUS radius M|KM|FT|MI] [BYBOX width height M|KM|FT|MI] [ASC|DESC] [COUNT count [ANY]] [STOREDIST]",
    ),
];

// ---- argument helpers (geo.c's extract*OrReply) ----

/// Two arguments: longitude, latitude, inside the limits a geohash can encode.
fn long_lat(a: &[Bytes]) -> R<[f64; 2]> {
    let lon = args::float(&a[0])?;
    let lat = args::float(&a[1])?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&lon)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat)
    {
        return Err(Reply::err(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok([lon, lat])
}

/// Meters per unit.
fn unit(arg: &[u8]) -> R<f64> {
    Ok(if is(arg, "m") {
        1.0
    } else if is(arg, "km") {
        1000.0
    } else if is(arg, "ft") {
        0.3048
    } else if is(arg, "mi") {
        1609.34
    } else {
        return Err(Reply::err(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ));
    })
}

fn number(arg: &[u8], what: &str) -> R<f64> {
    parse_f64(arg).ok_or_else(|| Reply::err(format!("ERR need numeric {what}")))
}

/// `radius unit`: (radius, meters per unit).
fn radius(a: &[Bytes]) -> R<(f64, f64)> {
    let r = number(&a[0], "radius")?;
    if r < 0.0 {
        return Err(Reply::err("ERR radius cannot be negative"));
    }
    Ok((r, unit(&a[1])?))
}

/// `width height unit`.
fn box_size(a: &[Bytes]) -> R<(f64, f64, f64)> {
    let w = number(&a[0], "width")?;
    let h = number(&a[1], "height")?;
    if h < 0.0 || w < 0.0 {
        return Err(Reply::err("ERR height or width cannot be negative"));
    }
    Ok((w, h, unit(&a[2])?))
}

fn member_pos(z: &ZSet, member: &[u8]) -> R<[f64; 2]> {
    z.score(member)
        .map(geohash::decode_score)
        .ok_or_else(|| Reply::err("ERR could not decode requested zset member"))
}

/// Redis's `addReplyDoubleDistance`: fixedpoint_d2string with 4 decimals (llrint rounding).
fn fixed4(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    const LIMIT: f64 = 9223372036854775808.0;
    let x = d * 10000.0;
    // llrint gives LLONG_MIN for what does not fit, as the x86 conversion does.
    let v = if (-LIMIT..LIMIT).contains(&x) {
        x.round_ties_even() as i64
    } else {
        i64::MIN
    };
    let (sign, u) = if v < 0 {
        ("-", v.unsigned_abs())
    } else {
        ("", v as u64)
    };
    format!("{sign}{}.{:04}", u / 10000, u % 10000)
}

fn distance_reply(d: f64) -> Reply {
    Reply::bulk(fixed4(d))
}

// ---- GEOADD, GEOHASH, GEOPOS, GEODIST ----

/// GEOADD key [CH] [NX|XX] long lat member ...: validated here, then run as ZADD.
fn geoadd(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let (mut nx, mut xx) = (false, false);
        let mut longidx = 2;
        while longidx < argv.len() {
            let a = &argv[longidx];
            if is(a, "nx") {
                nx = true;
            } else if is(a, "xx") {
                xx = true;
            } else if !is(a, "ch") {
                break;
            }
            longidx += 1;
        }
        if !(argv.len() - longidx).is_multiple_of(3) || (xx && nx) {
            return syntax();
        }
        let mut zargv: Vec<Bytes> = vec![Bytes::from_static(b"zadd")];
        zargv.extend_from_slice(&argv[1..longidx]);
        for triple in argv[longidx..].chunks(3) {
            let [lon, lat] = long_lat(triple)?;
            let score = geohash::score_of(lon, lat).unwrap_or(0.0);
            zargv.push(args::int_bytes(score as i64));
            zargv.push(triple[2].clone());
        }
        Ok(zsets::zadd(ctx, &zargv))
    })())
}

fn geohash(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let z = read(ctx, &argv[1])?;
        Ok(Reply::Array(
            argv[2..]
                .iter()
                .map(|m| match z.and_then(|z| z.score(m)) {
                    Some(s) => Reply::bulk(geohash::hash_string(s)),
                    None => Reply::Nil,
                })
                .collect(),
        ))
    })())
}

fn geopos(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let z = read(ctx, &argv[1])?;
        Ok(Reply::Array(
            argv[2..]
                .iter()
                .map(|m| match z.and_then(|z| z.score(m)) {
                    Some(s) => {
                        let [lon, lat] = geohash::decode_score(s);
                        Reply::Array(vec![Reply::HumanDouble(lon), Reply::HumanDouble(lat)])
                    }
                    None => Reply::NilArray,
                })
                .collect(),
        ))
    })())
}

fn geodist(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let to_meter = match argv.len() {
            4 => 1.0,
            5 => unit(&argv[4])?,
            _ => return syntax(),
        };
        let Some(z) = read(ctx, &argv[1])? else {
            return Ok(Reply::Nil);
        };
        let (Some(s1), Some(s2)) = (z.score(&argv[2]), z.score(&argv[3])) else {
            return Ok(Reply::Nil);
        };
        let [x1, y1] = geohash::decode_score(s1);
        let [x2, y2] = geohash::decode_score(s2);
        Ok(distance_reply(geohash::distance(x1, y1, x2, y2) / to_meter))
    })())
}

// ---- GEORADIUS*, GEOSEARCH, GEOSEARCHSTORE (georadiusGeneric) ----

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// GEORADIUS / GEORADIUS_RO (`ro`: no STORE).
    Coords {
        ro: bool,
    },
    /// GEORADIUSBYMEMBER / GEORADIUSBYMEMBER_RO.
    Member {
        ro: bool,
    },
    Search,
    SearchStore,
}

#[derive(Clone, Copy, PartialEq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// The parsed request; `shape` is None only when the source key is missing (Redis then skips
/// reading the centre and the radius of GEORADIUSBYMEMBER).
struct Request {
    shape: Option<Shape>,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    any: bool,
    count: usize,
    store: Option<Bytes>,
    storedist: bool,
}

/// A point found by the search (geo.c's geoPoint).
struct Point {
    xy: [f64; 2],
    dist: f64,
    score: f64,
    member: Bytes,
}

fn parse(argv: &[Bytes], z: Option<&ZSet>, var: Variant) -> R<Request> {
    let mut req = Request {
        shape: None,
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::None,
        any: false,
        count: 0,
        store: None,
        storedist: false,
    };
    let mut xy = [0.0; 2];
    let mut kind = ShapeKind::Radius(0.0);
    let mut conversion = 0.0;
    let base = match var {
        Variant::Coords { .. } => {
            xy = long_lat(&argv[2..4])?;
            let (r, conv) = radius(&argv[4..6])?;
            (kind, conversion) = (ShapeKind::Radius(r), conv);
            6
        }
        Variant::Member { .. } => {
            if let Some(z) = z {
                xy = member_pos(z, &argv[2])?;
                let (r, conv) = radius(&argv[3..5])?;
                (kind, conversion) = (ShapeKind::Radius(r), conv);
            }
            5
        }
        Variant::Search => 2,
        Variant::SearchStore => {
            req.store = Some(argv[1].clone());
            3
        }
    };
    let is_search = matches!(var, Variant::Search | Variant::SearchStore);
    let may_store = matches!(
        var,
        Variant::Coords { ro: false } | Variant::Member { ro: false }
    );
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let rest = &argv[base..];
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        let left = rest.len() - i - 1;
        if is(a, "withdist") {
            req.withdist = true;
        } else if is(a, "withhash") {
            req.withhash = true;
        } else if is(a, "withcoord") {
            req.withcoord = true;
        } else if is(a, "any") {
            req.any = true;
        } else if is(a, "asc") {
            req.sort = Sort::Asc;
        } else if is(a, "desc") {
            req.sort = Sort::Desc;
        } else if is(a, "count") && left >= 1 {
            let n = args::int(&rest[i + 1])?;
            if n <= 0 {
                return Err(Reply::err("ERR COUNT must be > 0"));
            }
            req.count = n as usize;
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && left >= 1 && may_store {
            req.store = Some(rest[i + 1].clone());
            req.storedist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && var == Variant::SearchStore {
            req.storedist = true;
        } else if is(a, "frommember") && left >= 1 && is_search && !fromloc {
            if let Some(z) = z {
                xy = member_pos(z, &rest[i + 1])?;
            }
            frommember = true;
            i += 1;
        } else if is(a, "fromlonlat") && left >= 2 && is_search && !frommember {
            xy = long_lat(&rest[i + 1..i + 3])?;
            fromloc = true;
            i += 2;
        } else if is(a, "byradius") && left >= 2 && is_search && !bybox {
            let (r, conv) = radius(&rest[i + 1..i + 3])?;
            (kind, conversion) = (ShapeKind::Radius(r), conv);
            byradius = true;
            i += 2;
        } else if is(a, "bybox") && left >= 3 && is_search && !byradius {
            let (width, height, conv) = box_size(&rest[i + 1..i + 4])?;
            (kind, conversion) = (ShapeKind::Box { width, height }, conv);
            bybox = true;
            i += 3;
        } else {
            return syntax();
        }
        i += 1;
    }
    check_options(argv, var, &req, frommember || fromloc, byradius || bybox)?;
    if z.is_some() {
        req.shape = Some(Shape {
            kind,
            xy,
            conversion,
        });
    }
    Ok(req)
}

/// The checks georadiusGeneric makes after reading the options, in its order.
fn check_options(argv: &[Bytes], var: Variant, req: &Request, from: bool, by: bool) -> R<()> {
    if req.store.is_some() && (req.withdist || req.withhash || req.withcoord) {
        let what = if var == Variant::SearchStore {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(Reply::err(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = String::from_utf8_lossy(&argv[0]);
    let search = matches!(var, Variant::Search | Variant::SearchStore);
    if search && !from {
        return Err(Reply::err(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if search && !by {
        return Err(Reply::err(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if req.any && req.count == 0 {
        return Err(Reply::err("ERR the ANY argument requires COUNT argument"));
    }
    Ok(())
}

/// membersOfAllNeighbors: the points inside the shape, cell by cell in Redis's order, each
/// cell's members in score order; with `limit` (COUNT ANY) it stops once it has that many.
fn search(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let areas = geohash::areas_by_shape(shape);
    let mut out: Vec<Point> = Vec::new();
    let full = |out: &Vec<Point>| limit > 0 && out.len() >= limit;
    let mut last_processed = 0;
    for i in 0..areas.len() {
        if areas[i].is_zero() {
            continue;
        }
        // A huge radius can make neighbours the same cell: skip a repeat of the last one.
        if last_processed != 0 && areas[i] == areas[last_processed] {
            continue;
        }
        if full(&out) {
            break;
        }
        let (min, max) = geohash::score_range(areas[i]);
        let range = z.range_by_score(
            ScoreBound {
                value: min,
                exclusive: false,
            },
            ScoreBound {
                value: max,
                exclusive: true,
            },
        );
        for (member, score) in range {
            if let Some((xy, dist)) = geohash::within_shape(shape, score) {
                out.push(Point {
                    xy,
                    dist,
                    score,
                    member: member.clone(),
                });
            }
            if full(&out) {
                break;
            }
        }
        last_processed = i;
    }
    out
}

fn by_dist(a: &Point, b: &Point) -> i32 {
    if a.dist > b.dist {
        1
    } else if a.dist == b.dist {
        0
    } else {
        -1
    }
}

/// Sorts as Redis does: qsort when every point is returned, pqsort of the first `returned`.
fn sort_points(points: &mut Vec<Point>, sort: Sort, returned: usize) {
    let desc = |a: &Point, b: &Point| -by_dist(a, b);
    let all = returned == points.len();
    match (sort, all) {
        (Sort::None, _) => {}
        (Sort::Asc, true) => csort::qsort(points, by_dist),
        (Sort::Desc, true) => csort::qsort(points, desc),
        (Sort::Asc, false) => csort::pqsort(
            points,
            &|a, b| by_dist(a, b).cmp(&0),
            0,
            returned as i64 - 1,
        ),
        (Sort::Desc, false) => {
            csort::pqsort(points, &|a, b| desc(a, b).cmp(&0), 0, returned as i64 - 1)
        }
    }
}

fn point_reply(p: &Point, req: &Request) -> Reply {
    let member = Reply::Bulk(p.member.clone());
    if !(req.withdist || req.withhash || req.withcoord) {
        return member;
    }
    let mut item = vec![member];
    if req.withdist {
        item.push(distance_reply(p.dist));
    }
    if req.withhash {
        item.push(Reply::Int(p.score as i64));
    }
    if req.withcoord {
        item.push(Reply::Array(vec![
            Reply::HumanDouble(p.xy[0]),
            Reply::HumanDouble(p.xy[1]),
        ]));
    }
    Reply::Array(item)
}

fn georadius_generic(ctx: &mut Ctx, argv: &[Bytes], var: Variant) -> Reply {
    let src = if var == Variant::SearchStore { 2 } else { 1 };
    reply((|| {
        let z = read(ctx, &argv[src])?;
        let mut req = parse(argv, z, var)?;
        let (Some(z), Some(shape)) = (z, req.shape) else {
            return Ok(match &req.store {
                Some(dst) => store_result(ctx, dst, ZSet::default()),
                None => Reply::Array(vec![]),
            });
        };
        // COUNT without an order means the closest ones (but ANY takes any).
        if req.count != 0 && req.sort == Sort::None && !req.any {
            req.sort = Sort::Asc;
        }
        let mut points = search(z, &shape, if req.any { req.count } else { 0 });
        if points.is_empty() && req.store.is_none() {
            return Ok(Reply::Array(vec![]));
        }
        let returned = if req.count == 0 {
            points.len()
        } else {
            points.len().min(req.count)
        };
        sort_points(&mut points, req.sort, returned);
        points.truncate(returned);
        for p in points.iter_mut() {
            p.dist /= shape.conversion;
        }
        let Some(dst) = req.store.take() else {
            return Ok(Reply::Array(
                points.iter().map(|p| point_reply(p, &req)).collect(),
            ));
        };
        let mut result = ZSet::default();
        for p in points {
            result.insert(p.member, if req.storedist { p.dist } else { p.score });
        }
        Ok(store_result(ctx, &dst, result))
    })())
}

fn georadius(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    georadius_generic(ctx, argv, Variant::Coords { ro: false })
}

fn georadius_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    georadius_generic(ctx, argv, Variant::Coords { ro: true })
}

fn georadiusbymember(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    georadius_generic(ctx, argv, Variant::Member { ro: false })
}

fn georadiusbymember_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    georadius_generic(ctx, argv, Variant::Member { ro: true })
}

fn geosearch(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    georadius_generic(ctx, argv, Variant::Search)
}

fn geosearchstore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    georadius_generic(ctx, argv, Variant::SearchStore)
}

#[cfg(test)]
mod tests {
    use super::fixed4;

    #[test]
    fn distances_print_like_redis() {
        assert_eq!(fixed4(0.0), "0.0000");
        assert_eq!(fixed4(0.0001), "0.0001");
        assert_eq!(fixed4(6.06429515983917e-05), "0.0001");
        assert_eq!(fixed4(0.77500), "0.7750");
        assert_eq!(fixed4(166274.1516), "166274.1516");
    }
}
