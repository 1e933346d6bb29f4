//! The inspection log: every verdict the station gave, with what the person then
//! decided, in named sessions ("drop test 3 December"). Plain types and rules (filters,
//! counts, the CSV) with native tests; the page stores the entries in IndexedDB and
//! only displays them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::postprocess::Band;

/// What the person decided about a judged photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// They confirmed the damage, and said what kind it is.
    ConfirmedDamaged { kind: String },
    /// The photo joined the product's good photos (*Mark as good*).
    MarkedGood,
    /// The item was put aside for later.
    SetAside,
}

impl Decision {
    pub fn label(&self) -> String {
        match self {
            Decision::ConfirmedDamaged { kind } => format!("damaged: {kind}"),
            Decision::MarkedGood => "marked as good".into(),
            Decision::SetAside => "set aside".into(),
        }
    }
}

/// The kinds of damage a person can name (the last one for anything else).
pub const DAMAGE_KINDS: &[&str] = &["crack", "dent", "crush", "scratch", "tear", "hole", "stain", "wet", "other"];

/// One verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// IndexedDB's key, set when the entry is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<f64>,
    /// Milliseconds since 1970, and the local day (YYYY-MM-DD) it fell on.
    pub time_ms: f64,
    pub day: String,
    pub session: String,
    /// The product's library id and name ("" and "unknown product" when Auto knew none).
    pub product: String,
    pub product_name: String,
    /// Which model judged: the product's training time (ms since 1970).
    pub profile_version: f64,
    /// And the number of the product's version in use (`crate::client::versions`);
    /// None in entries logged before versions, or for an unknown product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<u32>,
    pub backend: String,
    pub file: String,
    /// The item the photo is a view of (its own name when alone).
    pub item: String,
    /// On the 0..1 scale (0.5 at the threshold); None when the photo was not judged.
    pub score: Option<f32>,
    pub band: Band,
    /// Why it was not judged (blurred, dark, unknown product).
    pub reason: Option<String>,
    /// A small JPEG of the photo with its heatmap.
    #[serde(with = "serde_bytes")]
    pub thumbnail: Vec<u8>,
    pub decision: Option<Decision>,
}

impl LogEntry {
    /// CHECK or DAMAGED: an item a person has to look at.
    pub fn flagged(&self) -> bool {
        self.band != Band::Ok
    }
}

/// Which entries the log panel shows; `None` is "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    pub product: Option<String>,
    pub session: Option<String>,
    pub band: Option<Band>,
    /// Days, inclusive (YYYY-MM-DD).
    pub from_day: Option<String>,
    pub to_day: Option<String>,
}

impl LogFilter {
    pub fn matches(&self, e: &LogEntry) -> bool {
        self.product.as_ref().is_none_or(|p| *p == e.product)
            && self.session.as_ref().is_none_or(|s| *s == e.session)
            && self.band.is_none_or(|b| b == e.band)
            && self.from_day.as_ref().is_none_or(|d| e.day >= *d)
            && self.to_day.as_ref().is_none_or(|d| e.day <= *d)
    }
}

/// Counts of one product's (or one day's) verdicts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub ok: usize,
    pub check: usize,
    pub damaged: usize,
}

impl Counts {
    fn add(&mut self, band: Band) {
        match band {
            Band::Ok => self.ok += 1,
            Band::Check => self.check += 1,
            Band::Damaged => self.damaged += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.ok + self.check + self.damaged
    }

    /// The share sent to a person (CHECK or DAMAGED).
    pub fn flagged_share(&self) -> f64 {
        (self.check + self.damaged) as f64 / self.total().max(1) as f64
    }
}

/// What the log panel shows of the entries a filter lets through.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogSummary {
    pub entries: usize,
    /// By product name.
    pub per_product: BTreeMap<String, Counts>,
    /// By day (YYYY-MM-DD).
    pub per_day: BTreeMap<String, Counts>,
    /// Confirmed kinds of damage, with how many of each.
    pub kinds: BTreeMap<String, usize>,
}

pub fn summarise<'a>(entries: impl IntoIterator<Item = &'a LogEntry>) -> LogSummary {
    let mut s = LogSummary::default();
    for e in entries {
        s.entries += 1;
        s.per_product.entry(e.product_name.clone()).or_default().add(e.band);
        s.per_day.entry(e.day.clone()).or_default().add(e.band);
        if let Some(Decision::ConfirmedDamaged { kind }) = &e.decision {
            *s.kinds.entry(kind.clone()).or_default() += 1;
        }
    }
    s
}

/// The columns of [`to_csv`], in order.
pub const CSV_HEADER: &str = "time,day,session,product,profile_version,model_version,backend,file,item,score,band,reason,decision";

/// The entries as CSV (RFC 4180 quoting). Text a spreadsheet would run as a formula
/// (a file named `=HYPERLINK(...)`, say) is prefixed with an apostrophe: names come from
/// files and people, and the export is opened elsewhere.
pub fn to_csv<'a>(entries: impl IntoIterator<Item = &'a LogEntry>) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for e in entries {
        let time = iso_time(e.time_ms);
        let version = iso_time(e.profile_version);
        let number = e.model_version.map(|v| v.to_string()).unwrap_or_default();
        let score = e.score.map(|s| format!("{s:.4}")).unwrap_or_default();
        let decision = e.decision.as_ref().map(Decision::label).unwrap_or_default();
        let fields = [
            time.as_str(),
            &e.day,
            &e.session,
            &e.product_name,
            &version,
            &number,
            &e.backend,
            &e.file,
            &e.item,
            &score,
            e.band.as_str(),
            e.reason.as_deref().unwrap_or(""),
            &decision,
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Milliseconds since 1970 as UTC `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
pub fn iso_time(ms: f64) -> String {
    let secs = (ms / 1000.0).floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The entries as JSON, without their thumbnails (those go in the zip).
pub fn to_json<'a>(entries: impl IntoIterator<Item = &'a LogEntry>) -> String {
    let rows: Vec<serde_json::Value> = entries
        .into_iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.remove("thumbnail");
                o.insert("time".into(), iso_time(e.time_ms).into());
            }
            v
        })
        .collect();
    serde_json::to_string_pretty(&rows).unwrap_or_default()
}

/// A file name for an entry's thumbnail in the zip: its key and a cleaned file name.
pub fn thumbnail_name(e: &LogEntry) -> String {
    let cleaned: String = e.file.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{:06}-{}-{cleaned}.jpg", e.key.unwrap_or(0.0) as u64, e.band.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(product: &str, day: &str, band: Band, decision: Option<Decision>) -> LogEntry {
        LogEntry {
            key: Some(1.0),
            time_ms: 1_796_119_200_000.0,
            day: day.into(),
            session: "morning".into(),
            product: format!("id-{product}"),
            product_name: product.into(),
            profile_version: 0.0,
            model_version: Some(3),
            backend: "CPU".into(),
            file: "box1_front.png".into(),
            item: "box1".into(),
            score: (band != Band::Check).then_some(0.3),
            band,
            reason: None,
            thumbnail: vec![1, 2, 3],
            decision,
        }
    }

    #[test]
    fn filters_by_product_session_band_and_days() {
        let a = entry("mug", "2026-12-01", Band::Damaged, None);
        let mut b = entry("box", "2026-12-03", Band::Ok, None);
        b.session = "drop test".into();
        let f = |f: LogFilter| [&a, &b].iter().filter(|e| f.matches(e)).count();
        assert_eq!(f(LogFilter::default()), 2);
        assert_eq!(f(LogFilter { product: Some("id-mug".into()), ..Default::default() }), 1);
        assert_eq!(f(LogFilter { session: Some("drop test".into()), ..Default::default() }), 1);
        assert_eq!(f(LogFilter { band: Some(Band::Check), ..Default::default() }), 0);
        assert_eq!(f(LogFilter { from_day: Some("2026-12-02".into()), ..Default::default() }), 1);
        assert_eq!(f(LogFilter { to_day: Some("2026-12-01".into()), from_day: Some("2026-12-01".into()), ..Default::default() }), 1);
    }

    #[test]
    fn counts_per_product_and_day_the_flagged_share_and_damage_kinds() {
        let crack = Some(Decision::ConfirmedDamaged { kind: "crack".into() });
        let entries = [
            entry("mug", "2026-12-01", Band::Damaged, crack.clone()),
            entry("mug", "2026-12-01", Band::Ok, None),
            entry("mug", "2026-12-02", Band::Check, Some(Decision::SetAside)),
            entry("mug", "2026-12-02", Band::Ok, Some(Decision::MarkedGood)),
            entry("box", "2026-12-02", Band::Damaged, crack),
        ];
        let s = summarise(&entries);
        assert_eq!(s.entries, 5);
        assert_eq!(s.per_product["mug"], Counts { ok: 2, check: 1, damaged: 1 });
        assert_eq!(s.per_product["mug"].flagged_share(), 0.5);
        assert_eq!(s.per_day["2026-12-02"].total(), 3);
        assert_eq!(s.kinds.get("crack"), Some(&2));
        assert_eq!(s.kinds.len(), 1);
    }

    #[test]
    fn the_csv_quotes_and_defuses_hostile_names() {
        let mut e = entry("mug, \"blue\"", "2026-12-01", Band::Damaged, Some(Decision::ConfirmedDamaged { kind: "dent".into() }));
        e.file = "=HYPERLINK(\"x\")".into();
        let csv = to_csv([&e]);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(CSV_HEADER));
        let row = lines.next().unwrap();
        assert!(row.starts_with("2026-12-01T10:00:00Z,2026-12-01,morning,\"mug, \"\"blue\"\"\","), "{row}");
        assert!(row.contains(",1970-01-01T00:00:00Z,3,CPU,"), "the model and its version number: {row}");
        assert!(row.contains(",\"'=HYPERLINK(\"\"x\"\")\","), "{row}");
        assert!(row.ends_with(",0.3000,damaged,,damaged: dent"), "{row}");
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn times_are_utc_iso() {
        assert_eq!(iso_time(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(951_782_400_000.0), "2000-02-29T00:00:00Z");
        assert_eq!(iso_time(1_796_169_599_000.0), "2026-12-01T23:59:59Z");
    }

    #[test]
    fn json_leaves_the_thumbnails_out_and_reads_back() {
        let e = entry("mug", "2026-12-01", Band::Check, Some(Decision::SetAside));
        let json = to_json([&e]);
        assert!(!json.contains("thumbnail") && json.contains("\"set_aside\"") && json.contains("\"check\""), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0]["product_name"], "mug");
        assert_eq!(thumbnail_name(&e), "000001-check-box1_front.png.jpg");
    }
}
