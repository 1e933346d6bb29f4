//! Items seen from several sides: photos of one item (front, back, sides) are grouped by
//! their file name's prefix (`box12_front.jpg`, `box12_back.jpg` are item `box12`), and
//! an item's verdict is its worst view's, since a crush on the hidden side of a box is
//! only seen from that side.

use crate::engine::postprocess::Band;

/// The item a photo belongs to: the file name without its extension, up to the last
/// `_` (when something comes before it). A name without `_` is an item of its own.
pub fn item_of(file: &str) -> String {
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    match stem.rsplit_once('_') {
        Some((prefix, _)) if !prefix.is_empty() => prefix.to_string(),
        _ => stem.to_string(),
    }
}

/// One view of an item: its tag in the page's list and its verdict once judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub tag: u32,
    pub band: Option<Band>,
}

/// An item and its views, in the order the photos came.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: String,
    pub views: Vec<View>,
}

impl Item {
    /// The worst view's verdict once every view is judged (a view that could not be
    /// judged leaves the item undecided).
    pub fn band(&self) -> Option<Band> {
        self.views.iter().map(|v| v.band).collect::<Option<Vec<_>>>()?.into_iter().max_by_key(|b| severity(*b))
    }
}

fn severity(band: Band) -> u8 {
    match band {
        Band::Ok => 0,
        Band::Check => 1,
        Band::Damaged => 2,
    }
}

/// Groups views by the items their files belong to, keeping the order of first sight.
pub fn group<'a>(views: impl IntoIterator<Item = (&'a str, View)>) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    for (file, view) in views {
        let key = item_of(file);
        match items.iter_mut().find(|i| i.key == key) {
            Some(item) => item.views.push(view),
            None => items.push(Item { key, views: vec![view] }),
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_item_is_the_name_up_to_its_last_underscore() {
        assert_eq!(item_of("box12_front.jpg"), "box12");
        assert_eq!(item_of("drop test/box_12_left.PNG"), "box_12");
        assert_eq!(item_of("cell0013.png"), "cell0013");
        assert_eq!(item_of("_front.png"), "_front");
        assert_eq!(item_of("noextension_back"), "noextension");
    }

    #[test]
    fn an_item_is_as_bad_as_its_worst_view_once_all_are_judged() {
        let v = |tag, band| View { tag, band };
        let items = group([
            ("box1_front.png", v(1, Some(Band::Ok))),
            ("box2_front.png", v(2, Some(Band::Ok))),
            ("box1_back.png", v(3, Some(Band::Damaged))),
            ("box1_left.png", v(4, Some(Band::Check))),
            ("box2_back.png", v(5, None)),
        ]);
        assert_eq!(items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["box1", "box2"]);
        assert_eq!(items[0].views.iter().map(|v| v.tag).collect::<Vec<_>>(), [1, 3, 4]);
        assert_eq!(items[0].band(), Some(Band::Damaged));
        assert_eq!(items[1].band(), None, "a view still pending");
        let checked = group([("a_1.png", v(1, Some(Band::Ok))), ("a_2.png", v(2, Some(Band::Check)))]);
        assert_eq!(checked[0].band(), Some(Band::Check));
    }
}
