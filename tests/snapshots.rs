//! Whole feeds as readers receive them, for one track of the fixture site.
//! A change to any byte of the output shows up here for review.

mod common;

#[test]
fn llm_track_feeds() {
    let site = common::built("site");
    let public = site.path().join("public/tracks/llm");
    for file in ["rss.xml", "atom.xml", "feed.json"] {
        let text = std::fs::read_to_string(public.join(file)).unwrap();
        insta::assert_snapshot!(file, text);
    }
}
