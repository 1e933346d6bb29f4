//! Saved work in IndexedDB: the product library, each product's profile file and its
//! photos.
//!
//! Object stores, so listing the library never loads megabytes of model: `products`
//! (what the library shows), `profiles` (the profile file of a product, by product id),
//! `photos` (good and damaged photos, by an automatic key, indexed by product), and a
//! product's kept versions (`versions`, indexed by product, and `version_profiles`,
//! each version's profile file by the version's id), and the learning state of the
//! model in use (`learning`, by product id). Every change is one transaction:
//! when the browser refuses it (a full quota, say), nothing of it is written and
//! everything saved before stays as it was.

use rexie::{Index, ObjectStore, Rexie, TransactionMode};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use crate::client::log::LogEntry;
use crate::client::versions::Version;
use crate::eval::dataset::Category;
use crate::protocol::{ProfileSummary, UploadedFile};

const DB_NAME: &str = "damagelens";
const PRODUCTS: &str = "products";
const PROFILES: &str = "profiles";
const PHOTOS: &str = "photos";
const BY_PRODUCT: &str = "by_product";
/// The inspection log (`crate::client::log::LogEntry`), by an automatic key. Its own
/// store and transactions: a log that cannot be written never touches the library.
const LOG: &str = "log";
const VERSIONS: &str = "versions";
const VERSION_PROFILES: &str = "version_profiles";
/// The learning state of a product's model in use (`crate::engine::learning`), by
/// product id: what *Mark as good* goes on from. One per product, tens of MB.
const LEARNING: &str = "learning";

/// One product of the library, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    /// Milliseconds since 1970, when the product was created and last trained.
    pub created_ms: f64,
    pub trained_ms: Option<f64>,
    /// None until the product has been trained.
    pub summary: Option<ProfileSummary>,
    /// The number of its version in use (`crate::client::versions`); None before versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct ProfileRecord {
    id: String,
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
}

/// What a stored photo is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhotoRole {
    Good,
    Damaged,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Photo {
    /// Set by IndexedDB when the photo is added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<f64>,
    pub product: String,
    pub role: PhotoRole,
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// A damaged photo's mask (a PNG of its size, white where damaged), uploaded or painted.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<u8>>,
    /// A damaged photo's kind of damage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
}

pub struct Library {
    db: Rexie,
}

/// A storage failure, in words a person can act on.
///
/// A full quota shows in two ways: a request refused with `QuotaExceededError`, or (in
/// Chromium) every request accepted and then the commit aborted, which rexie reports as
/// `TransactioncommitFailed` without the browser's reason. A readwrite transaction whose
/// requests all succeeded has little else to abort on, so both read as "storage full".
fn explain(what: &str, error: impl std::fmt::Debug) -> String {
    let detail = format!("{error:?}");
    if detail.contains("Quota") || detail.contains("TransactioncommitFailed") {
        format!(
            "{what}: the browser would not store it, because this device's storage for DamageLens is full. \
             Nothing was changed; everything saved before is intact. Delete products or photos you no longer need, then try again."
        )
    } else {
        format!("{what}: the browser's storage refused ({detail}). Nothing was changed; try again.")
    }
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, String> {
    serde_wasm_bindgen::to_value(value).map_err(|e| format!("cannot store this: {e}"))
}

fn from_js<T: for<'de> Deserialize<'de>>(value: JsValue) -> Option<T> {
    serde_wasm_bindgen::from_value(value).ok()
}

impl Library {
    pub async fn open() -> Result<Library, String> {
        let db = Rexie::builder(DB_NAME)
            .version(4)
            .add_object_store(ObjectStore::new(PRODUCTS).key_path("id"))
            .add_object_store(ObjectStore::new(PROFILES).key_path("id"))
            .add_object_store(ObjectStore::new(PHOTOS).key_path("key").auto_increment(true).add_index(Index::new(BY_PRODUCT, "product")))
            .add_object_store(ObjectStore::new(LOG).key_path("key").auto_increment(true))
            .add_object_store(ObjectStore::new(VERSIONS).key_path("id").add_index(Index::new(BY_PRODUCT, "product")))
            .add_object_store(ObjectStore::new(VERSION_PROFILES).key_path("id"))
            .add_object_store(ObjectStore::new(LEARNING).key_path("id"))
            .build()
            .await
            .map_err(|e| explain("Opening saved work", e))?;
        Ok(Library { db })
    }

    /// Every product, oldest first. A record this version cannot read is left out, not deleted.
    pub async fn products(&self) -> Result<Vec<Product>, String> {
        let tx = self.db.transaction(&[PRODUCTS], TransactionMode::ReadOnly).map_err(|e| explain("Reading the library", e))?;
        let store = tx.store(PRODUCTS).map_err(|e| explain("Reading the library", e))?;
        let values = store.get_all(None, None).await.map_err(|e| explain("Reading the library", e))?;
        let mut products: Vec<Product> = values.into_iter().filter_map(from_js).collect();
        products.sort_by(|a, b| a.created_ms.total_cmp(&b.created_ms));
        Ok(products)
    }

    /// Saves a product's description (a new name, say); its profile goes with a new
    /// version ([`Library::save_version`]).
    pub async fn save(&self, product: &Product) -> Result<(), String> {
        let what = format!("Saving {}", product.name);
        let tx = self.db.transaction(&[PRODUCTS], TransactionMode::ReadWrite).map_err(|e| explain(&what, e))?;
        tx.store(PRODUCTS).map_err(|e| explain(&what, e))?.put(&to_js(product)?, None).await.map_err(|e| explain(&what, e))?;
        tx.commit().await.map_err(|e| explain(&what, e))
    }

    /// Saves a product with a new profile file as its new `version`, dropping the kept
    /// versions named in `drop`, all in one transaction: a refused write changes nothing.
    /// `learning`: the new model's learning state; without one, the kept state stays
    /// when the change keeps the model ([`crate::client::versions::Change::keeps_learning`])
    /// and goes otherwise.
    pub async fn save_version(
        &self,
        product: &Product,
        bytes: &[u8],
        version: &Version,
        drop: &[String],
        learning: Option<&[u8]>,
    ) -> Result<(), String> {
        let what = format!("Saving {}", product.name);
        let stores = [PRODUCTS, PROFILES, VERSIONS, VERSION_PROFILES, LEARNING];
        let tx = self.db.transaction(&stores, TransactionMode::ReadWrite).map_err(|e| explain(&what, e))?;
        let store = |name| tx.store(name).map_err(|e| explain(&what, e));
        store(PRODUCTS)?.put(&to_js(product)?, None).await.map_err(|e| explain(&what, e))?;
        let current = ProfileRecord { id: product.id.clone(), bytes: bytes.to_vec() };
        store(PROFILES)?.put(&to_js(&current)?, None).await.map_err(|e| explain(&what, e))?;
        store(VERSIONS)?.put(&to_js(version)?, None).await.map_err(|e| explain(&what, e))?;
        let kept = ProfileRecord { id: version.id.clone(), bytes: bytes.to_vec() };
        store(VERSION_PROFILES)?.put(&to_js(&kept)?, None).await.map_err(|e| explain(&what, e))?;
        for id in drop {
            for name in [VERSIONS, VERSION_PROFILES] {
                store(name)?.delete(JsValue::from_str(id)).await.map_err(|e| explain(&what, e))?;
            }
        }
        match learning {
            Some(bytes) => {
                let state = ProfileRecord { id: product.id.clone(), bytes: bytes.to_vec() };
                store(LEARNING)?.put(&to_js(&state)?, None).await.map_err(|e| explain(&what, e))?;
            }
            None if version.change.keeps_learning() => {}
            None => store(LEARNING)?.delete(JsValue::from_str(&product.id)).await.map_err(|e| explain(&what, e))?,
        }
        tx.commit().await.map_err(|e| explain(&what, e))
    }

    /// The learning state of a product's model in use, when one is kept.
    pub async fn learning(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
        self.record(LEARNING, id).await
    }

    /// A product's kept versions (any order; products trained before versions were kept have none).
    pub async fn versions(&self, product: &str) -> Result<Vec<Version>, String> {
        let what = "Reading the product's versions";
        let tx = self.db.transaction(&[VERSIONS], TransactionMode::ReadOnly).map_err(|e| explain(what, e))?;
        let index = tx.store(VERSIONS).and_then(|s| s.index(BY_PRODUCT)).map_err(|e| explain(what, e))?;
        let range = rexie::KeyRange::only(&JsValue::from_str(product)).map_err(|e| explain(what, e))?;
        let values = index.get_all(Some(range), None).await.map_err(|e| explain(what, e))?;
        Ok(values.into_iter().filter_map(from_js).collect())
    }

    /// The profile file of a kept version, as it was saved.
    pub async fn version_profile(&self, version: &str) -> Result<Option<Vec<u8>>, String> {
        self.record(VERSION_PROFILES, version).await
    }

    async fn record(&self, store: &str, id: &str) -> Result<Option<Vec<u8>>, String> {
        let what = "Reading a profile";
        let tx = self.db.transaction(&[store], TransactionMode::ReadOnly).map_err(|e| explain(what, e))?;
        let value = tx.store(store).map_err(|e| explain(what, e))?.get(JsValue::from_str(id)).await.map_err(|e| explain(what, e))?;
        Ok(value.and_then(from_js::<ProfileRecord>).map(|r| r.bytes))
    }

    pub async fn profile(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
        self.record(PROFILES, id).await
    }

    /// Removes a product with its profile, versions and photos.
    pub async fn delete(&self, id: &str) -> Result<(), String> {
        let what = "Deleting the product";
        let keys = self.photo_keys(id).await?;
        let versions: Vec<String> = self.versions(id).await?.into_iter().map(|v| v.id).collect();
        let stores = [PRODUCTS, PROFILES, PHOTOS, VERSIONS, VERSION_PROFILES, LEARNING];
        let tx = self.db.transaction(&stores, TransactionMode::ReadWrite).map_err(|e| explain(what, e))?;
        for store in [PRODUCTS, PROFILES, LEARNING] {
            tx.store(store).map_err(|e| explain(what, e))?.delete(JsValue::from_str(id)).await.map_err(|e| explain(what, e))?;
        }
        for version in &versions {
            for store in [VERSIONS, VERSION_PROFILES] {
                tx.store(store).map_err(|e| explain(what, e))?.delete(JsValue::from_str(version)).await.map_err(|e| explain(what, e))?;
            }
        }
        let photos = tx.store(PHOTOS).map_err(|e| explain(what, e))?;
        for key in keys {
            photos.delete(key).await.map_err(|e| explain(what, e))?;
        }
        tx.commit().await.map_err(|e| explain(what, e))
    }

    /// Stores photos of a product, all or none; returns them with their keys.
    pub async fn add_photos(&self, product: &str, role: PhotoRole, files: &[UploadedFile]) -> Result<Vec<Photo>, String> {
        let what = &format!("Saving {}", photo_names(files));
        let tx = self.db.transaction(&[PHOTOS], TransactionMode::ReadWrite).map_err(|e| explain(what, e))?;
        let store = tx.store(PHOTOS).map_err(|e| explain(what, e))?;
        let mut saved = Vec::with_capacity(files.len());
        for file in files {
            let mut photo = Photo {
                key: None,
                product: product.to_string(),
                role,
                name: file.name.clone(),
                bytes: file.bytes.clone(),
                mask: None,
                category: None,
            };
            let key = store.add(&to_js(&photo)?, None).await.map_err(|e| explain(what, e))?;
            photo.key = key.as_f64();
            saved.push(photo);
        }
        tx.commit().await.map_err(|e| explain(what, e))?;
        Ok(saved)
    }

    pub async fn photos(&self, product: &str) -> Result<Vec<Photo>, String> {
        let what = "Reading the photos";
        let tx = self.db.transaction(&[PHOTOS], TransactionMode::ReadOnly).map_err(|e| explain(what, e))?;
        let store = tx.store(PHOTOS).map_err(|e| explain(what, e))?;
        let index = store.index(BY_PRODUCT).map_err(|e| explain(what, e))?;
        let range = rexie::KeyRange::only(&JsValue::from_str(product)).map_err(|e| explain(what, e))?;
        let values = index.get_all(Some(range), None).await.map_err(|e| explain(what, e))?;
        Ok(values.into_iter().filter_map(from_js).collect())
    }

    /// Saves a changed photo (its mask or category) over the stored one.
    pub async fn put_photo(&self, photo: &Photo) -> Result<(), String> {
        let what = format!("Saving {}", photo.name);
        let tx = self.db.transaction(&[PHOTOS], TransactionMode::ReadWrite).map_err(|e| explain(&what, e))?;
        tx.store(PHOTOS).map_err(|e| explain(&what, e))?.put(&to_js(photo)?, None).await.map_err(|e| explain(&what, e))?;
        tx.commit().await.map_err(|e| explain(&what, e))
    }

    /// Copies photos to another product, with their roles, masks and categories.
    pub async fn copy_photos(&self, photos: &[Photo], product: &str) -> Result<(), String> {
        let what = "Copying the photos";
        let tx = self.db.transaction(&[PHOTOS], TransactionMode::ReadWrite).map_err(|e| explain(what, e))?;
        let store = tx.store(PHOTOS).map_err(|e| explain(what, e))?;
        for photo in photos {
            let copy = Photo { key: None, product: product.to_string(), ..photo.clone() };
            store.add(&to_js(&copy)?, None).await.map_err(|e| explain(what, e))?;
        }
        tx.commit().await.map_err(|e| explain(what, e))
    }

    pub async fn delete_photo(&self, key: f64) -> Result<(), String> {
        let what = "Removing the photo";
        let tx = self.db.transaction(&[PHOTOS], TransactionMode::ReadWrite).map_err(|e| explain(what, e))?;
        tx.store(PHOTOS).map_err(|e| explain(what, e))?.delete(JsValue::from_f64(key)).await.map_err(|e| explain(what, e))?;
        tx.commit().await.map_err(|e| explain(what, e))
    }

    /// Appends a verdict to the log; returns its key.
    pub async fn log(&self, entry: &LogEntry) -> Result<f64, String> {
        let what = format!("Logging the verdict on {}", entry.file);
        let tx = self.db.transaction(&[LOG], TransactionMode::ReadWrite).map_err(|e| explain(&what, e))?;
        let key = tx.store(LOG).map_err(|e| explain(&what, e))?.add(&to_js(entry)?, None).await.map_err(|e| explain(&what, e))?;
        tx.commit().await.map_err(|e| explain(&what, e))?;
        key.as_f64().ok_or_else(|| format!("{what}: the browser gave the entry no key"))
    }

    /// Saves a changed log entry (a decision) over the stored one.
    pub async fn put_log(&self, entry: &LogEntry) -> Result<(), String> {
        let what = format!("Saving the decision on {}", entry.file);
        let tx = self.db.transaction(&[LOG], TransactionMode::ReadWrite).map_err(|e| explain(&what, e))?;
        tx.store(LOG).map_err(|e| explain(&what, e))?.put(&to_js(entry)?, None).await.map_err(|e| explain(&what, e))?;
        tx.commit().await.map_err(|e| explain(&what, e))
    }

    /// The whole log, oldest first. An entry this version cannot read is left out, not deleted.
    pub async fn log_entries(&self) -> Result<Vec<LogEntry>, String> {
        let what = "Reading the inspection log";
        let tx = self.db.transaction(&[LOG], TransactionMode::ReadOnly).map_err(|e| explain(what, e))?;
        let values = tx.store(LOG).map_err(|e| explain(what, e))?.get_all(None, None).await.map_err(|e| explain(what, e))?;
        Ok(values.into_iter().filter_map(from_js).collect())
    }

    async fn photo_keys(&self, product: &str) -> Result<Vec<JsValue>, String> {
        Ok(self.photos(product).await?.into_iter().filter_map(|p| p.key.map(JsValue::from_f64)).collect())
    }
}

/// The photos of a batch by name, the first few only: "a.png", "a.png and b.png",
/// "a.png, b.png, c.png and 7 more photos".
fn photo_names(files: &[UploadedFile]) -> String {
    const NAMED: usize = 3;
    let names: Vec<&str> = files.iter().take(NAMED).map(|f| f.name.as_str()).collect();
    match (names.split_last(), files.len().saturating_sub(NAMED)) {
        (None, _) => "the photos".into(),
        (Some((only, [])), _) => (*only).to_string(),
        (Some((last, first)), 0) => format!("{} and {last}", first.join(", ")),
        (Some(_), more) => format!("{} and {more} more photo{}", names.join(", "), if more == 1 { "" } else { "s" }),
    }
}

/// A fresh product id: time plus randomness, unique on this device.
pub fn new_id() -> String {
    format!("p{:x}{:08x}", js_sys::Date::now() as u64, (js_sys::Math::random() * u32::MAX as f64) as u32)
}
