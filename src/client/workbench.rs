//! Which product the person works on, which products are training, and which profile the
//! engine holds: plain state with its rules, so that a training that ends never takes
//! the person's product away. The page's signals only display it.

/// A product's id in the library.
pub type ProductId = String;

/// What the page must do after an engine answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing: the engine holds the current product's profile (or it has none yet).
    Nothing,
    /// The engine holds another product's profile: load the current product's.
    LoadCurrent(ProductId),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workbench {
    /// The product shown and inspected, and whether it has a trained profile.
    current: Option<(ProductId, bool)>,
    /// The product whose profile the engine holds (last trained or loaded).
    engine_holds: Option<ProductId>,
    /// Products whose training calls are in flight, oldest first.
    training: Vec<ProductId>,
    /// A profile is being loaded into the engine.
    loading: Option<ProductId>,
    /// The person pressed New product and is naming it.
    naming: bool,
    /// The engine is busy scoring calibration photos.
    pub calibrating: bool,
}

impl Workbench {
    pub fn current(&self) -> Option<&str> {
        self.current.as_ref().map(|(id, _)| id.as_str())
    }

    /// A product became current (or none did).
    pub fn select(&mut self, product: Option<(ProductId, bool)>) -> Next {
        self.naming = false;
        self.current = product;
        self.next()
    }

    /// The person pressed New product: nothing is current while they name it.
    pub fn naming_new(&mut self) {
        self.current = None;
        self.naming = true;
    }

    /// Nothing is current and the person has not started a product: the app may show
    /// one of its own (the demo) without taking anything from them.
    pub fn free_to_show(&self) -> bool {
        self.current.is_none() && !self.naming
    }

    /// The current product was trained, or its profile replaced (calibration).
    pub fn current_trained(&mut self) {
        if let Some((id, trained)) = &mut self.current {
            *trained = true;
            self.engine_holds = Some(id.clone());
        }
    }

    pub fn training_started(&mut self, product: &str) {
        self.training.push(product.to_string());
    }

    /// A training call ended. On success the engine now holds that product's profile,
    /// whichever product is current: when the person moved on to another one meanwhile,
    /// theirs stays current and its profile goes back to the engine.
    pub fn training_ended(&mut self, product: &str, succeeded: bool) -> Next {
        if let Some(at) = self.training.iter().position(|p| p == product) {
            self.training.remove(at);
        }
        if succeeded {
            self.engine_holds = Some(product.to_string());
            if let Some((id, trained)) = &mut self.current {
                if id == product {
                    *trained = true;
                }
            }
        }
        self.next()
    }

    pub fn load_started(&mut self, product: &str) {
        self.loading = Some(product.to_string());
    }

    /// A load call ended; on success the engine holds `product`'s profile.
    pub fn load_ended(&mut self, product: &str, succeeded: bool) {
        if self.loading.as_deref() == Some(product) {
            self.loading = None;
        }
        if succeeded {
            self.engine_holds = Some(product.to_string());
        }
    }

    /// An imported profile became the engine's, as a new product.
    pub fn imported(&mut self, product: &str) {
        self.engine_holds = Some(product.to_string());
        self.current = Some((product.to_string(), true));
    }

    /// The engine was restarted: it holds no profile, and nothing is in flight.
    pub fn engine_restarted(&mut self) {
        self.engine_holds = None;
        self.training.clear();
        self.loading = None;
        self.calibrating = false;
    }

    pub fn is_training(&self, product: &str) -> bool {
        self.training.iter().any(|p| p == product)
    }

    /// The current product is being trained.
    pub fn current_training(&self) -> bool {
        self.current().is_some_and(|id| self.is_training(id))
    }

    /// The current product is trained, its profile is in the engine and nothing is
    /// changing it: photos can be inspected.
    pub fn ready(&self) -> bool {
        match &self.current {
            Some((id, true)) => self.engine_holds.as_ref() == Some(id) && !self.is_training(id) && !self.calibrating,
            _ => false,
        }
    }

    /// Nothing is training, loading or calibrating: the engine's profile stays put, so
    /// photos may be identified and the product switched (Auto).
    pub fn idle(&self) -> bool {
        self.training.is_empty() && self.loading.is_none() && !self.calibrating
    }

    /// Whether the current product's profile must go to the engine.
    pub fn next(&self) -> Next {
        match &self.current {
            Some((id, true)) if self.engine_holds.as_ref() != Some(id) && self.loading.as_ref() != Some(id) && !self.is_training(id) => {
                Next::LoadCurrent(id.clone())
            }
            _ => Next::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = "demo";
    const MINE: &str = "mine";

    #[test]
    fn a_new_product_trained_while_the_demo_trains_stays_current_and_gets_trained() {
        let mut bench = Workbench::default();
        // First visit: the demo is saved, made current and sent to train.
        bench.select(Some((DEMO.into(), false)));
        bench.training_started(DEMO);
        assert!(!bench.ready());
        // The person presses New product, adds photos and presses Train at once.
        bench.naming_new();
        assert!(!bench.free_to_show(), "the demo must not take the place of the product being named");
        bench.select(Some((MINE.into(), false)));
        bench.training_started(MINE);
        assert!(bench.current_training());
        // The demo's training ends first: the new product stays current, still training.
        assert_eq!(bench.training_ended(DEMO, true), Next::Nothing);
        assert_eq!(bench.current(), Some(MINE));
        assert!(!bench.ready());
        // Then theirs: trained, held by the engine, ready.
        assert_eq!(bench.training_ended(MINE, true), Next::Nothing);
        assert!(bench.ready());
    }

    #[test]
    fn the_demo_is_shown_only_on_an_untouched_page() {
        let mut bench = Workbench::default();
        assert!(bench.free_to_show());
        bench.select(Some(("old".into(), true)));
        assert!(!bench.free_to_show());
        bench.naming_new();
        assert!(!bench.free_to_show());
        assert_eq!(bench.current(), None);
    }

    #[test]
    fn a_training_that_ends_after_the_person_went_back_reloads_their_product() {
        let mut bench = Workbench::default();
        bench.select(Some(("old".into(), true)));
        bench.load_started("old");
        bench.load_ended("old", true);
        assert!(bench.ready());
        // Another product trains while the person looks at the old one again.
        bench.training_started(DEMO);
        assert_eq!(bench.training_ended(DEMO, true), Next::LoadCurrent("old".into()));
        assert!(!bench.ready());
        bench.load_started("old");
        assert_eq!(bench.next(), Next::Nothing, "a load in flight is not asked for twice");
        bench.load_ended("old", true);
        assert!(bench.ready());
    }

    #[test]
    fn a_failed_training_or_load_changes_nothing_the_engine_holds() {
        let mut bench = Workbench::default();
        bench.select(Some(("a".into(), true)));
        bench.load_ended("a", true);
        bench.training_started("a");
        assert!(!bench.ready(), "not while it trains again");
        assert_eq!(bench.training_ended("a", false), Next::Nothing);
        assert!(bench.ready());
        bench.load_ended("b", false);
        assert!(bench.ready());
    }

    #[test]
    fn idle_only_when_nothing_changes_the_engines_profile() {
        let mut bench = Workbench::default();
        assert!(bench.idle());
        bench.training_started("a");
        assert!(!bench.idle());
        bench.training_ended("a", true);
        bench.load_started("b");
        assert!(!bench.idle());
        bench.load_ended("b", true);
        bench.calibrating = true;
        assert!(!bench.idle());
        bench.calibrating = false;
        assert!(bench.idle());
    }

    #[test]
    fn a_restarted_engine_holds_nothing() {
        let mut bench = Workbench::default();
        bench.select(Some(("a".into(), true)));
        bench.load_ended("a", true);
        bench.training_started("b");
        bench.engine_restarted();
        assert!(!bench.is_training("b"));
        assert_eq!(bench.next(), Next::LoadCurrent("a".into()));
    }

    #[test]
    fn calibrating_holds_inspection_back() {
        let mut bench = Workbench::default();
        bench.select(Some(("a".into(), true)));
        bench.load_ended("a", true);
        bench.calibrating = true;
        assert!(!bench.ready());
        bench.calibrating = false;
        bench.current_trained();
        assert!(bench.ready());
    }
}
