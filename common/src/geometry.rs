//! Geometries (空间几何) as the spatial base keeps them: WKT (optionally
//! `SRID=4490;`) or a GeoJSON geometry object, in CGCS2000 geographic
//! coordinates (EPSG:4490): longitude then latitude, in degrees.
//!
//! [`parse`] refuses, in one sentence each, what a department most often
//! sends by mistake: another reference system declared, projected metres
//! (a Gauss-Krüger zone) instead of degrees, latitude written first, an
//! invalid shape (a self-intersecting ring, a ring of too few points).
//! [`measure`] gives the bounding box, the geodesic area in square metres
//! and the centroid, from the `geo` crate. Its geodesic area is on the
//! WGS84 ellipsoid; CGCS2000's differs from it by 0.1 mm in the semi-minor
//! axis, far below any parcel's survey accuracy.

use geo::{BoundingRect, Centroid, CoordsIter, GeodesicArea, Geometry, Validation};

/// The one reference system kept: CGCS2000 geographic (EPSG:4490).
pub const SRID: u32 = 4490;

/// Largest geometry text accepted, in bytes.
pub const MAX_TEXT: usize = 1024 * 1024;

/// Deepest nesting of brackets accepted: a collection of multipolygons is 4
/// deep; the WKT reader recurses once per level, so a hostile value must
/// not choose how deep.
pub const MAX_DEPTH: usize = 8;

/// Most coordinates in one geometry: validity checks compare a ring's
/// segments pairwise, so the count is bounded before they run.
pub const MAX_POINTS: usize = 20_000;

/// A box in longitude and latitude: west, south, east, north.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

impl BBox {
    /// `west,south,east,north` in degrees, such as `100.8,36.4,101.9,37.1`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad =
            || format!("{text:?} is not a box: write west,south,east,north in degrees, such as 100.8,36.4,101.9,37.1");
        let parts: Vec<f64> =
            text.split(',').map(|p| p.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| bad())?;
        let [west, south, east, north] = parts[..] else { return Err(bad()) };
        let b = Self { west, south, east, north };
        if ![west, south, east, north].iter().all(|v| v.is_finite())
            || !(-180.0..=180.0).contains(&west)
            || !(-180.0..=180.0).contains(&east)
            || !(-90.0..=90.0).contains(&south)
            || !(-90.0..=90.0).contains(&north)
            || west > east
            || south > north
        {
            return Err(bad());
        }
        Ok(b)
    }

    /// True when the two boxes share a point.
    pub fn intersects(&self, other: &BBox) -> bool {
        self.west <= other.east && other.west <= self.east && self.south <= other.north && other.south <= self.north
    }
}

impl std::fmt::Display for BBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{},{}", self.west, self.south, self.east, self.north)
    }
}

/// What the spatial base computes of a geometry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measures {
    pub bbox: BBox,
    /// Geodesic area in square metres (0 for points and lines).
    pub area_m2: f64,
    /// Longitude and latitude of the centroid.
    pub centroid: (f64, f64),
}

/// Parses and checks a geometry given as WKT or as a GeoJSON geometry object.
pub fn parse(text: &str) -> Result<Geometry<f64>, String> {
    let t = text.trim();
    if t.len() > MAX_TEXT {
        return Err(format!("the geometry is {} bytes; at most {MAX_TEXT} are kept", t.len()));
    }
    let mut depth = 0usize;
    for b in t.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("the geometry nests deeper than {MAX_DEPTH} levels; store simpler shapes"));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let g = if t.starts_with('{') { from_geojson(t)? } else { from_wkt(t)? };
    let points = g.coords_count();
    if points > MAX_POINTS {
        return Err(format!(
            "the geometry has {points} points; at most {MAX_POINTS} are kept: simplify it at the source"
        ));
    }
    check_coordinates(&g)?;
    g.check_validation().map_err(|e| format!("the geometry is not valid: {e}"))?;
    Ok(g)
}

fn from_wkt(t: &str) -> Result<Geometry<f64>, String> {
    let body = match t.split_once(';') {
        Some((srid, rest)) if srid.trim().to_ascii_uppercase().starts_with("SRID=") => {
            let n = srid.trim()[5..].trim();
            if n.parse::<u32>().ok() != Some(SRID) {
                return Err(format!(
                    "the geometry declares SRID={n}; GDX keeps geometries in CGCS2000 (SRID=4490): transform it at the source"
                ));
            }
            rest.trim()
        }
        _ => t,
    };
    let shown: String = body.chars().take(40).collect();
    wkt::TryFromWkt::try_from_wkt_str(body).map_err(|e| {
        format!("{shown:?}… is neither WKT nor GeoJSON ({e}); write, for example, POLYGON((101.7 36.6, …))")
    })
}

fn from_geojson(t: &str) -> Result<Geometry<f64>, String> {
    let v: serde_json::Value =
        serde_json::from_str(t).map_err(|e| format!("the geometry is not valid GeoJSON: {e}"))?;
    if let Some(kind) = v.get("type").and_then(serde_json::Value::as_str)
        && (kind == "Feature" || kind == "FeatureCollection")
    {
        return Err(format!("a GeoJSON {kind} was given; store one geometry object (its \"geometry\" member)"));
    }
    // the 2008 GeoJSON `crs` member, when present, must name CGCS2000
    if let Some(crs) = v.get("crs") {
        let name = crs.pointer("/properties/name").and_then(serde_json::Value::as_str).unwrap_or("");
        let ok = ["EPSG:4490", "urn:ogc:def:crs:EPSG::4490", "urn:ogc:def:crs:EPSG:6.6:4490"].contains(&name);
        if !ok {
            return Err(format!(
                "the GeoJSON declares crs {name:?}; GDX keeps geometries in CGCS2000 (EPSG:4490): transform it at the source"
            ));
        }
    }
    let g: geojson::Geometry =
        serde_json::from_value(v).map_err(|e| format!("the GeoJSON is not a geometry object: {e}"))?;
    Geometry::<f64>::try_from(g).map_err(|e| format!("the GeoJSON geometry cannot be read: {e}"))
}

fn check_coordinates(g: &Geometry<f64>) -> Result<(), String> {
    let mut any = false;
    for c in g.coords_iter() {
        any = true;
        if !c.x.is_finite() || !c.y.is_finite() {
            return Err("the geometry holds a coordinate that is not a number".into());
        }
        if c.x.abs() > 180.0 || c.y.abs() > 180.0 {
            return Err(format!(
                "coordinate ({}, {}) is not in degrees; it looks projected (metres, such as a Gauss-Krüger zone): send CGCS2000 longitude and latitude (EPSG:4490)",
                c.x, c.y
            ));
        }
        if c.y.abs() > 90.0 {
            return Err(format!(
                "latitude {} is out of range; the coordinate ({}, {}) looks written latitude first: write longitude first (x = 经度, y = 纬度)",
                c.y, c.x, c.y
            ));
        }
    }
    if !any {
        return Err("the geometry is empty".into());
    }
    Ok(())
}

/// Bounding box, geodesic area and centroid of a geometry [`parse`] accepted.
pub fn measure(g: &Geometry<f64>) -> Measures {
    let rect = g.bounding_rect();
    let bbox = rect.map_or(BBox { west: 0.0, south: 0.0, east: 0.0, north: 0.0 }, |r| BBox {
        west: r.min().x,
        south: r.min().y,
        east: r.max().x,
        north: r.max().y,
    });
    let centroid =
        g.centroid().map_or(((bbox.west + bbox.east) / 2.0, (bbox.south + bbox.north) / 2.0), |p| (p.x(), p.y()));
    Measures { bbox, area_m2: g.geodesic_area_unsigned(), centroid }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARCEL: &str = "POLYGON((101.7 36.6,101.8 36.6,101.8 36.7,101.7 36.7,101.7 36.6))";

    #[test]
    fn wkt_and_geojson_in_cgcs2000_are_measured() {
        let m = measure(&parse(PARCEL).unwrap());
        assert_eq!(m.bbox, BBox { west: 101.7, south: 36.6, east: 101.8, north: 36.7 });
        // 0.1° × 0.1° at 36.65° N: 11.1 km × 8.9 km
        assert!((m.area_m2 - 99_228_106.0).abs() < 10.0, "{}", m.area_m2);
        assert!((m.centroid.0 - 101.75).abs() < 1e-9 && (m.centroid.1 - 36.65).abs() < 1e-9);
        let ewkt = format!("SRID=4490;{PARCEL}");
        assert_eq!(measure(&parse(&ewkt).unwrap()), m);
        let gj = r#"{"type":"Polygon","crs":{"type":"name","properties":{"name":"EPSG:4490"}},
            "coordinates":[[[101.7,36.6],[101.8,36.6],[101.8,36.7],[101.7,36.7],[101.7,36.6]]]}"#;
        assert_eq!(measure(&parse(gj).unwrap()), m);
        let point = measure(&parse(r#"{"type":"Point","coordinates":[101.78,36.62]}"#).unwrap());
        assert_eq!((point.area_m2, point.centroid), (0.0, (101.78, 36.62)));
    }

    #[test]
    fn each_mistake_is_named() {
        let cases = [
            (format!("SRID=4326;{PARCEL}"), "declares SRID=4326"),
            (
                r#"{"type":"Point","crs":{"type":"name","properties":{"name":"EPSG:3857"}},"coordinates":[1,2]}"#
                    .into(),
                "declares crs \"EPSG:3857\"",
            ),
            ("POINT(431234.5 4051234.2)".into(), "looks projected"),
            ("POINT(36.6 101.7)".into(), "latitude first"),
            ("POLYGON((101.7 36.6,101.8 36.7,101.8 36.6,101.7 36.7,101.7 36.6))".into(), "self-intersection"),
            ("POLYGON((101.7 36.6,101.8 36.7,101.7 36.6))".into(), "not valid"),
            ("BOX(1 2)".into(), "neither WKT nor GeoJSON"),
            (r#"{"type":"Feature","geometry":null}"#.into(), "store one geometry object"),
            ("POINT EMPTY".into(), "empty"),
            ("GEOMETRYCOLLECTION(".repeat(10_000), "nests deeper than 8 levels"),
            (
                format!(
                    "LINESTRING({})",
                    (0..20_001).map(|i| format!("{} 36", 100.0 + f64::from(i) * 1e-5)).collect::<Vec<_>>().join(",")
                ),
                "20001 points; at most 20000",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn boxes_parse_and_intersect() {
        let b = BBox::parse("101.75, 36.65, 102, 37").unwrap();
        assert!(b.intersects(&measure(&parse(PARCEL).unwrap()).bbox));
        assert!(!BBox::parse("102,37,103,38").unwrap().intersects(&measure(&parse(PARCEL).unwrap()).bbox));
        for bad in ["1,2,3", "3,2,1,4", "a,b,c,d", "0,95,1,96"] {
            assert!(BBox::parse(bad).unwrap_err().contains("is not a box"), "{bad}");
        }
    }
}
