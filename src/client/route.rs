//! The app's pages, named in the address's fragment (`#/inspect`), so a link to a page
//! works after a reload and offline (the fragment never reaches a server, and the
//! service worker serves the one page). Every panel stays mounted and a page only
//! shows some of them: work under way on a hidden panel (an evaluation, a training)
//! goes on and is there when the person comes back.

/// A page of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The station: the photo or camera, the product match, the verdict and heatmap
    /// large, the item's views and the decisions at the thumb. What store staff open.
    Inspect,
    /// The library and teaching a product.
    Products,
    Calibrate,
    Evaluate,
    Log,
    /// Every panel on one page: the workbench, for setting a station up on a desktop.
    All,
}

/// The panels a page can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Library,
    /// The current product's versions, with roll back.
    History,
    Teach,
    Inspect,
    Calibrate,
    Evaluate,
    Log,
}

impl Page {
    /// In the order of the navigation bar.
    pub const ALL: [Page; 6] = [Page::Inspect, Page::Products, Page::Calibrate, Page::Evaluate, Page::Log, Page::All];

    /// The page a fragment names; an empty or unknown one is the station.
    pub fn from_hash(hash: &str) -> Page {
        let name = hash.trim_start_matches('#').trim_start_matches('/');
        Page::ALL.into_iter().find(|p| p.slug() == name).unwrap_or(Page::Inspect)
    }

    pub fn slug(self) -> &'static str {
        match self {
            Page::Inspect => "inspect",
            Page::Products => "products",
            Page::Calibrate => "calibrate",
            Page::Evaluate => "evaluate",
            Page::Log => "log",
            Page::All => "all",
        }
    }

    pub fn hash(self) -> String {
        format!("#/{}", self.slug())
    }

    pub fn title(self) -> &'static str {
        match self {
            Page::Inspect => "Inspect",
            Page::Products => "Products",
            Page::Calibrate => "Calibrate",
            Page::Evaluate => "Evaluate",
            Page::Log => "Log",
            Page::All => "Everything",
        }
    }

    pub fn shows(self, panel: Panel) -> bool {
        match self {
            Page::All => true,
            Page::Inspect => panel == Panel::Inspect,
            Page::Products => matches!(panel, Panel::Library | Panel::History | Panel::Teach),
            Page::Calibrate => panel == Panel::Calibrate,
            Page::Evaluate => panel == Panel::Evaluate,
            Page::Log => panel == Panel::Log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_reads_back_from_its_own_fragment() {
        for page in Page::ALL {
            assert_eq!(Page::from_hash(&page.hash()), page);
        }
        assert_eq!(Page::from_hash(""), Page::Inspect);
        assert_eq!(Page::from_hash("#/no-such-page"), Page::Inspect);
        assert_eq!(Page::from_hash("#log"), Page::Log);
    }

    #[test]
    fn each_panel_is_on_exactly_one_page_besides_everything() {
        let panels = [Panel::Library, Panel::History, Panel::Teach, Panel::Inspect, Panel::Calibrate, Panel::Evaluate, Panel::Log];
        for panel in panels {
            assert!(Page::All.shows(panel));
            let pages = Page::ALL.into_iter().filter(|p| *p != Page::All && p.shows(panel)).count();
            assert_eq!(pages, 1, "{panel:?}");
        }
        assert!(Page::Products.shows(Panel::Teach) && !Page::Inspect.shows(Panel::Library));
    }
}
