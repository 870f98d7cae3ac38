//! The PDF side: page geometry of the original, and copying the pages krilla drew into the
//! incremental update (overlays as Form XObjects on existing pages, certificate pages appended
//! to the page tree).

use std::collections::BTreeMap;

use lopdf::{Dictionary, Document, IncrementalDocument, Object, ObjectId, Stream};

use super::StampError;

/// How deep `/Parent` chains and reference chains are followed.
const MAX_DEPTH: usize = 64;

fn unreadable(message: impl std::fmt::Display) -> StampError {
    StampError::Unreadable(message.to_string())
}

fn draw_err(message: impl std::fmt::Display) -> StampError {
    StampError::Draw(message.to_string())
}

/// A page as it is shown: its crop box (in default user space) and rotation, and the size
/// after rotation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PageGeometry {
    /// `[x0, y0, x1, y1]`, normalized, inside the media box.
    pub crop: [f32; 4],
    /// 0, 90, 180 or 270 (clockwise, as `/Rotate`).
    pub rotate: u16,
    /// Shown width and height in points (crop box, rotation applied).
    pub width: f32,
    pub height: f32,
}

impl PageGeometry {
    /// The matrix from "shown" space (points, origin at the bottom-left of the page as shown,
    /// y up) to the page's default user space.
    pub fn matrix(&self) -> [f32; 6] {
        let [x0, y0, x1, y1] = self.crop;
        let (w, h) = (x1 - x0, y1 - y0);
        match self.rotate {
            90 => [0.0, 1.0, -1.0, 0.0, x0 + w, y0],
            180 => [-1.0, 0.0, 0.0, -1.0, x0 + w, y0 + h],
            270 => [0.0, -1.0, 1.0, 0.0, x0, y0 + h],
            _ => [1.0, 0.0, 0.0, 1.0, x0, y0],
        }
    }
}

/// The rectangles, in shown points from the top-left corner `(x, y, w, h)`, of the page's
/// visible annotations (form fields, earlier visible signatures, notes): renderers may not draw
/// them, so the blank-area search is told about them.
pub(super) fn annotation_rects(
    doc: &Document,
    page_id: ObjectId,
    geometry: &PageGeometry,
) -> Vec<(f32, f32, f32, f32)> {
    let Some(annots) = doc
        .get_dictionary(page_id)
        .ok()
        .and_then(|page| resolve(doc, page.get(b"Annots").ok()?))
        .and_then(|a| a.as_array().ok())
    else {
        return Vec::new();
    };
    let [a, b, c, d, e, f] = geometry.matrix();
    let det = a * d - b * c;
    if det == 0.0 {
        return Vec::new();
    }
    // User space to shown space (y up), then y flipped to count from the top.
    let to_shown = |ux: f32, uy: f32| {
        let (x, y) = (ux - e, uy - f);
        let sx = (d * x - c * y) / det;
        let sy = (-b * x + a * y) / det;
        (sx, geometry.height - sy)
    };
    let mut out = Vec::new();
    for annot in annots.iter().take(10_000) {
        let Some(annot) = resolve(doc, annot).and_then(|a| a.as_dict().ok()) else {
            continue;
        };
        // Hidden (bit 2) or NoView (bit 6) annotations show nothing; links and pop-ups
        // (closed unless opened) usually show nothing either.
        let flags = annot.get(b"F").and_then(Object::as_i64).unwrap_or(0);
        let subtype = annot
            .get(b"Subtype")
            .and_then(Object::as_name)
            .unwrap_or(b"");
        if flags & (2 | 32) != 0 || subtype == b"Link" || subtype == b"Popup" {
            continue;
        }
        let Some([x0, y0, x1, y1]) = rect(doc, annot.get(b"Rect").ok()) else {
            continue;
        };
        if x1 - x0 <= 0.0 || y1 - y0 <= 0.0 {
            continue;
        }
        let (p, q) = (to_shown(x0, y0), to_shown(x1, y1));
        let (left, top) = (p.0.min(q.0), p.1.min(q.1));
        out.push((left, top, (p.0 - q.0).abs(), (p.1 - q.1).abs()));
    }
    out
}

/// Follows references (a bounded number of them).
fn resolve<'a>(doc: &'a Document, mut object: &'a Object) -> Option<&'a Object> {
    for _ in 0..MAX_DEPTH {
        match object {
            Object::Reference(id) => object = doc.get_object(*id).ok()?,
            other => return Some(other),
        }
    }
    None
}

/// A page attribute, looked up on the page and then up its `/Parent` chain (inheritable
/// attributes: `/Resources`, `/MediaBox`, `/CropBox`, `/Rotate`).
fn inherited<'a>(doc: &'a Document, page: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    let mut node = page;
    for _ in 0..MAX_DEPTH {
        if let Ok(value) = node.get(key) {
            return resolve(doc, value);
        }
        node = resolve(doc, node.get(b"Parent").ok()?)?.as_dict().ok()?;
    }
    None
}

fn number(doc: &Document, object: &Object) -> Option<f32> {
    resolve(doc, object)?
        .as_float()
        .ok()
        .filter(|v| v.is_finite())
}

fn rect(doc: &Document, object: Option<&Object>) -> Option<[f32; 4]> {
    let array = object?.as_array().ok()?;
    if array.len() != 4 {
        return None;
    }
    let v: Vec<f32> = array
        .iter()
        .map(|o| number(doc, o))
        .collect::<Option<_>>()?;
    Some([
        v[0].min(v[2]),
        v[1].min(v[3]),
        v[0].max(v[2]),
        v[1].max(v[3]),
    ])
}

/// The shown geometry of a page of `doc`.
pub(super) fn geometry(doc: &Document, page_id: ObjectId) -> Result<PageGeometry, StampError> {
    let page = doc
        .get_dictionary(page_id)
        .map_err(|_| unreadable("a page object is missing or broken"))?;
    // US Letter when the (required) media box is missing, as most readers do.
    let media = rect(doc, inherited(doc, page, b"MediaBox")).unwrap_or([0.0, 0.0, 612.0, 792.0]);
    let crop = match rect(doc, inherited(doc, page, b"CropBox")) {
        Some(c) => [
            c[0].max(media[0]),
            c[1].max(media[1]),
            c[2].min(media[2]),
            c[3].min(media[3]),
        ],
        None => media,
    };
    let (w, h) = (crop[2] - crop[0], crop[3] - crop[1]);
    if !(w >= 1.0 && h >= 1.0 && w <= 200_000.0 && h <= 200_000.0) {
        return Err(unreadable("a page has an empty or invalid page box"));
    }
    let rotate = inherited(doc, page, b"Rotate")
        .and_then(|r| r.as_i64().ok())
        .map(|r| r.rem_euclid(360))
        .unwrap_or(0);
    // Only multiples of 90 are valid; readers ignore others.
    let rotate = match rotate {
        90 => 90,
        180 => 180,
        270 => 270,
        _ => 0,
    };
    let (width, height) = if rotate % 180 == 0 { (w, h) } else { (h, w) };
    Ok(PageGeometry {
        crop,
        rotate,
        width,
        height,
    })
}

/// Copies objects of the krilla document into the update, under new numbers above the
/// original's highest.
struct Importer<'a> {
    src: &'a Document,
    map: BTreeMap<ObjectId, ObjectId>,
    queue: Vec<ObjectId>,
}

impl<'a> Importer<'a> {
    fn new(src: &'a Document) -> Self {
        Self {
            src,
            map: BTreeMap::new(),
            queue: Vec::new(),
        }
    }

    fn new_id(doc: &mut Document) -> ObjectId {
        doc.max_id += 1;
        (doc.max_id, 0)
    }

    /// `object` with every reference renumbered (and queued for copying).
    fn rewrite(&mut self, dst: &mut Document, object: &Object) -> Object {
        match object {
            Object::Reference(id) => {
                let new = match self.map.get(id) {
                    Some(new) => *new,
                    None => {
                        let new = Self::new_id(dst);
                        self.map.insert(*id, new);
                        self.queue.push(*id);
                        new
                    }
                };
                Object::Reference(new)
            }
            Object::Array(items) => {
                Object::Array(items.iter().map(|o| self.rewrite(dst, o)).collect())
            }
            Object::Dictionary(dict) => Object::Dictionary(self.rewrite_dict(dst, dict)),
            Object::Stream(stream) => {
                let mut copy = stream.clone();
                copy.dict = self.rewrite_dict(dst, &stream.dict);
                Object::Stream(copy)
            }
            other => other.clone(),
        }
    }

    fn rewrite_dict(&mut self, dst: &mut Document, dict: &Dictionary) -> Dictionary {
        let mut out = Dictionary::new();
        for (key, value) in dict.iter() {
            // Structure-tree links lead to objects that are not copied.
            if key == b"StructParents" || key == b"StructParent" || key == b"Parent" {
                continue;
            }
            out.set(key.clone(), self.rewrite(dst, value));
        }
        out
    }

    /// Copies every queued object (and what they refer to).
    fn finish(mut self, dst: &mut Document) -> Result<(), StampError> {
        while let Some(old) = self.queue.pop() {
            let object = self
                .src
                .get_object(old)
                .map_err(|_| draw_err("the drawn page refers to a missing object"))?;
            let copy = self.rewrite(dst, object);
            // Every queued number was mapped when it was queued.
            if let Some(new) = self.map.get(&old) {
                dst.objects.insert(*new, copy);
            }
        }
        Ok(())
    }
}

/// One page of the drawn (krilla) document: its content as one stream, and its resources.
struct DrawnPage {
    content: Stream,
    resources: Object,
    group: Option<Object>,
}

fn drawn_page(src: &Document, page_id: ObjectId) -> Result<DrawnPage, StampError> {
    let page = src.get_dictionary(page_id).map_err(draw_err)?;
    let content = match page.get(b"Contents").map_err(draw_err)? {
        Object::Reference(id) => src.get_object(*id).map_err(draw_err)?,
        other => other,
    };
    let content = match content {
        Object::Stream(stream) => stream.clone(),
        _ => return Err(draw_err("the drawn page has no single content stream")),
    };
    let resources = page
        .get(b"Resources")
        .cloned()
        .unwrap_or_else(|_| Object::Dictionary(Dictionary::new()));
    Ok(DrawnPage {
        content,
        resources,
        group: page.get(b"Group").ok().cloned(),
    })
}

/// What goes where.
pub(super) struct Plan<'a> {
    /// The drawn document.
    pub drawn: &'a Document,
    /// (original page, its geometry, drawn page index 1-based) for each overlaid page.
    pub overlays: Vec<(ObjectId, PageGeometry, u32)>,
    /// Drawn page indexes (1-based) to append as new pages, with their size.
    pub appended: Vec<(u32, f32, f32)>,
}

fn real(v: f32) -> Object {
    // Rounded to 1/1000 so the written numbers stay short.
    let r = (v * 1000.0).round() / 1000.0;
    if r == r.trunc() && r.abs() < 1e9 {
        Object::Integer(r as i64)
    } else {
        Object::Real(r)
    }
}

fn fmt_number(v: f32) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    let s = format!("{r}");
    if s == "-0" { "0".into() } else { s }
}

/// Writes the drawn pages into the update.
pub(super) fn merge(inc: &mut IncrementalDocument, plan: &Plan<'_>) -> Result<(), StampError> {
    let drawn_pages = plan.drawn.get_pages();
    let drawn_page = |index: u32| -> Result<DrawnPage, StampError> {
        let id = drawn_pages
            .get(&index)
            .ok_or_else(|| draw_err("a drawn page is missing"))?;
        drawn_page(plan.drawn, *id)
    };
    let mut importer = Importer::new(plan.drawn);

    for (page_id, geometry, index) in &plan.overlays {
        let drawn = drawn_page(*index)?;
        let mut dict = Dictionary::new();
        for key in [&b"Filter"[..], b"DecodeParms"] {
            if let Ok(value) = drawn.content.dict.get(key) {
                dict.set(key, value.clone());
            }
        }
        dict.set("Type", Object::Name(b"XObject".to_vec()));
        dict.set("Subtype", Object::Name(b"Form".to_vec()));
        dict.set(
            "BBox",
            Object::Array(vec![
                0.into(),
                0.into(),
                real(geometry.width),
                real(geometry.height),
            ]),
        );
        let resources = importer.rewrite(&mut inc.new_document, &drawn.resources);
        dict.set("Resources", resources);
        if let Some(group) = &drawn.group {
            let group = importer.rewrite(&mut inc.new_document, group);
            dict.set("Group", group);
        }
        let mut form = Stream::new(dict, drawn.content.content.clone());
        form.allows_compression = false;
        let form_id = inc.new_document.add_object(form);
        overlay_page(inc, *page_id, form_id, geometry)?;
    }

    if !plan.appended.is_empty() {
        let catalog_id = inc
            .get_prev_documents()
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .map_err(|_| unreadable("the trailer has no /Root reference"))?;
        let pages_id = inc
            .get_prev_documents()
            .get_dictionary(catalog_id)
            .and_then(|c| c.get(b"Pages"))
            .and_then(Object::as_reference)
            .map_err(|_| unreadable("the catalog has no /Pages reference"))?;
        let mut kids = Vec::new();
        for (index, width, height) in &plan.appended {
            let drawn = drawn_page(*index)?;
            let content = importer.rewrite(&mut inc.new_document, &Object::Stream(drawn.content));
            let content_id = inc.new_document.add_object(content);
            let resources = importer.rewrite(&mut inc.new_document, &drawn.resources);
            let media = Object::Array(vec![0.into(), 0.into(), real(*width), real(*height)]);
            let mut page = Dictionary::from_iter(vec![
                ("Type", Object::Name(b"Page".to_vec())),
                ("Parent", Object::Reference(pages_id)),
                ("MediaBox", media.clone()),
                ("CropBox", media),
                ("Rotate", Object::Integer(0)),
                ("Resources", resources),
                ("Contents", Object::Reference(content_id)),
            ]);
            if let Some(group) = &drawn.group {
                page.set("Group", importer.rewrite(&mut inc.new_document, group));
            }
            kids.push(Object::Reference(inc.new_document.add_object(page)));
        }
        append_pages(inc, pages_id, kids)?;
    }
    importer.finish(&mut inc.new_document)
}

/// Adds `kids` at the end of the root page-tree node and raises its `/Count`.
fn append_pages(
    inc: &mut IncrementalDocument,
    pages_id: ObjectId,
    kids: Vec<Object>,
) -> Result<(), StampError> {
    inc.opt_clone_object_to_new_document(pages_id)
        .map_err(unreadable)?;
    let added = kids.len() as i64;
    let (kids_entry, count) = {
        let prev = inc.get_prev_documents();
        let node = inc
            .new_document
            .get_dictionary(pages_id)
            .map_err(|_| unreadable("the page tree root is not a dictionary"))?;
        let count = node
            .get(b"Count")
            .ok()
            .and_then(|c| resolve(prev, c))
            .and_then(|c| c.as_i64().ok())
            .ok_or_else(|| unreadable("the page tree root has no /Count"))?;
        (node.get(b"Kids").ok().cloned(), count)
    };
    match kids_entry {
        Some(Object::Reference(array_id)) => {
            inc.opt_clone_object_to_new_document(array_id)
                .map_err(unreadable)?;
            match inc.new_document.get_object_mut(array_id) {
                Ok(Object::Array(array)) => array.extend(kids),
                _ => return Err(unreadable("/Kids of the page tree root is not an array")),
            }
        }
        Some(Object::Array(mut array)) => {
            array.extend(kids);
            inc.new_document
                .get_dictionary_mut(pages_id)
                .map_err(unreadable)?
                .set("Kids", Object::Array(array));
        }
        _ => return Err(unreadable("the page tree root has no /Kids array")),
    }
    inc.new_document
        .get_dictionary_mut(pages_id)
        .map_err(unreadable)?
        .set("Count", Object::Integer(count + added));
    Ok(())
}

/// Draws the form `form_id` over the page: its content is wrapped in `q … Q` (so a changed
/// graphics state cannot leak into the overlay), then the form is painted with the matrix
/// that maps shown space to the page's user space. The page gets its own `/Resources` (a copy
/// of the ones it had or inherited) with the form added.
fn overlay_page(
    inc: &mut IncrementalDocument,
    page_id: ObjectId,
    form_id: ObjectId,
    geometry: &PageGeometry,
) -> Result<(), StampError> {
    let (contents, mut resources) = {
        let prev = inc.get_prev_documents();
        let page = prev
            .get_dictionary(page_id)
            .map_err(|_| unreadable("a page object is missing or broken"))?;
        let contents: Vec<Object> = match page.get(b"Contents") {
            Ok(Object::Reference(id)) => match prev.get_object(*id) {
                Ok(Object::Array(items)) => items.clone(),
                Ok(_) => vec![Object::Reference(*id)],
                Err(_) => Vec::new(),
            },
            Ok(Object::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        let contents: Vec<Object> = contents
            .into_iter()
            .filter(|c| matches!(c, Object::Reference(_)))
            .collect();
        let resources = match inherited(prev, page, b"Resources") {
            Some(Object::Dictionary(dict)) => dict.clone(),
            _ => Dictionary::new(),
        };
        let xobjects = match resources
            .get(b"XObject")
            .ok()
            .and_then(|x| resolve(prev, x))
        {
            Some(Object::Dictionary(dict)) => dict.clone(),
            _ => Dictionary::new(),
        };
        let mut resources = resources;
        resources.set("XObject", Object::Dictionary(xobjects));
        (contents, resources)
    };

    let name = {
        let taken = match resources.get(b"XObject") {
            Ok(Object::Dictionary(x)) => x.clone(),
            _ => Dictionary::new(),
        };
        let mut name = b"SgnStamp".to_vec();
        let mut n = 1;
        while taken.has(&name) {
            name = format!("SgnStamp{n}").into_bytes();
            n += 1;
        }
        name
    };
    if let Ok(Object::Dictionary(x)) = resources.get_mut(b"XObject") {
        x.set(name.clone(), Object::Reference(form_id));
    }

    let m = geometry.matrix().map(fmt_number).join(" ");
    let name_str = String::from_utf8_lossy(&name).into_owned();
    let mut new_contents = Vec::new();
    let tail = if contents.is_empty() {
        format!("q {m} cm /{name_str} Do Q\n")
    } else {
        let head = inc
            .new_document
            .add_object(Stream::new(Dictionary::new(), b"q\n".to_vec()));
        new_contents.push(Object::Reference(head));
        new_contents.extend(contents);
        format!("\nQ\nq {m} cm /{name_str} Do Q\n")
    };
    let tail = inc
        .new_document
        .add_object(Stream::new(Dictionary::new(), tail.into_bytes()));
    new_contents.push(Object::Reference(tail));

    inc.opt_clone_object_to_new_document(page_id)
        .map_err(unreadable)?;
    let page = inc
        .new_document
        .get_dictionary_mut(page_id)
        .map_err(unreadable)?;
    page.set("Contents", Object::Array(new_contents));
    page.set("Resources", Object::Dictionary(resources));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(m: [f32; 6], x: f32, y: f32) -> (f32, f32) {
        (m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5])
    }

    #[test]
    fn annotations_are_found_in_shown_coordinates() {
        use lopdf::dictionary;
        for (rotate, expected) in [
            (0, (36.0, 684.0, 200.0, 72.0)),
            (90, (36.0, 36.0, 72.0, 200.0)),
        ] {
            let mut doc = Document::with_version("1.7");
            let widget = doc.add_object(dictionary! {
                "Type" => "Annot", "Subtype" => "Widget",
                "Rect" => vec![36.into(), 36.into(), 236.into(), 108.into()],
            });
            let hidden = doc.add_object(dictionary! {
                "Type" => "Annot", "Subtype" => "Widget", "F" => 2,
                "Rect" => vec![300.into(), 300.into(), 400.into(), 400.into()],
            });
            let page = doc.add_object(dictionary! {
                "Type" => "Page", "Rotate" => rotate,
                "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
                "Annots" => vec![Object::Reference(widget), Object::Reference(hidden)],
            });
            let g = geometry(&doc, page).expect("geometry");
            assert_eq!(annotation_rects(&doc, page, &g), vec![expected], "{rotate}");
        }
    }

    #[test]
    fn the_shown_top_left_corner_lands_where_each_rotation_shows_it() {
        // A 100 × 200 crop box at (10, 20).
        let g = |rotate| PageGeometry {
            crop: [10.0, 20.0, 110.0, 220.0],
            rotate,
            width: if rotate % 180 == 0 { 100.0 } else { 200.0 },
            height: if rotate % 180 == 0 { 200.0 } else { 100.0 },
        };
        // Shown top-left is (0, height) in shown space (y up).
        let top_left = |r: u16| apply(g(r).matrix(), 0.0, g(r).height);
        assert_eq!(top_left(0), (10.0, 220.0)); // user top-left
        assert_eq!(top_left(90), (10.0, 20.0)); // user bottom-left
        assert_eq!(top_left(180), (110.0, 20.0)); // user bottom-right
        assert_eq!(top_left(270), (110.0, 220.0)); // user top-right
        for r in [0, 90, 180, 270] {
            let (x, y) = apply(g(r).matrix(), g(r).width, 0.0);
            assert!((10.0..=110.0).contains(&x) && (20.0..=220.0).contains(&y));
        }
    }
}
