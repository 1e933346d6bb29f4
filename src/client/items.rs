//! Items seen from several sides: photos of one item (front, back, sides) are grouped by
//! their file name's prefix (`box12_front.jpg`, `box12_back.jpg` are item `box12`), or
//! into the item a person opened with *New item*; an item's verdict is its worst view's,
//! since a crush on the hidden side of a box is only seen from that side.

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

/// The item a person has opened with *New item*, if any: while it is open, every photo
/// joins it whatever its name, and the photos before stay listed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemSession {
    opened: u32,
    open: Option<String>,
}

impl ItemSession {
    /// Opens the next item ("item 1", "item 2", ...) and returns its name.
    pub fn open_new(&mut self) -> String {
        self.opened += 1;
        let name = format!("item {}", self.opened);
        self.open = Some(name.clone());
        name
    }

    pub fn close(&mut self) {
        self.open = None;
    }

    pub fn open(&self) -> Option<&str> {
        self.open.as_deref()
    }

    /// The item a new photo joins: the open one, else the one its name says.
    pub fn key_for(&self, file: &str) -> String {
        self.open.clone().unwrap_or_else(|| item_of(file))
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
        self.views.iter().map(|v| v.band).collect::<Option<Vec<_>>>()?.into_iter().max()
    }
}

/// Groups views by their items' keys ([`ItemSession::key_for`]), keeping the order of
/// first sight.
pub fn group<'a>(views: impl IntoIterator<Item = (&'a str, View)>) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    for (key, view) in views {
        match items.iter_mut().find(|i| i.key == key) {
            Some(item) => item.views.push(view),
            None => items.push(Item { key: key.to_string(), views: vec![view] }),
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
    fn an_open_item_takes_every_photo_until_it_is_closed() {
        let mut session = ItemSession::default();
        assert_eq!(session.key_for("box1_front.png"), "box1");
        assert_eq!(session.open_new(), "item 1");
        assert_eq!((session.key_for("IMG_0001.jpg"), session.key_for("cell7.png")), ("item 1".into(), "item 1".into()));
        session.close();
        assert_eq!((session.open(), session.key_for("IMG_0001.jpg").as_str()), (None, "IMG"));
        assert_eq!(session.open_new(), "item 2");
    }

    #[test]
    fn an_item_is_as_bad_as_its_worst_view_once_all_are_judged() {
        let v = |tag, band| View { tag, band };
        let session = ItemSession::default();
        let keys: Vec<String> = ["box1_front.png", "box2_front.png", "box1_back.png", "box1_left.png", "box2_back.png"]
            .iter()
            .map(|f| session.key_for(f))
            .collect();
        let bands = [Some(Band::Ok), Some(Band::Ok), Some(Band::Damaged), Some(Band::Check), None];
        let items = group(keys.iter().zip(bands).enumerate().map(|(i, (k, b))| (k.as_str(), v(i as u32 + 1, b))));
        assert_eq!(items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["box1", "box2"]);
        assert_eq!(items[0].views.iter().map(|v| v.tag).collect::<Vec<_>>(), [1, 3, 4]);
        assert_eq!(items[0].band(), Some(Band::Damaged));
        assert_eq!(items[1].band(), None, "a view still pending");
        let checked = group([("a", v(1, Some(Band::Ok))), ("a", v(2, Some(Band::Check)))]);
        assert_eq!(checked[0].band(), Some(Band::Check));
    }
}
