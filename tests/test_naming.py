from kg.naming import namespace_label, split_iri, unique_local_names


def test_split_and_labels():
    assert split_iri("http://schema.org/name") == ("http://schema.org/", "name")
    assert split_iri("http://purl.org/goodrelations/v1#name") == (
        "http://purl.org/goodrelations/v1#",
        "name",
    )
    assert namespace_label("http://purl.org/goodrelations/v1#") == "gr"
    assert namespace_label("http://shop.example/vocab/") == "vocab"


def test_unique_names_prefix_only_on_collision():
    names = unique_local_names(
        ["http://schema.org/name", "http://xmlns.com/foaf/0.1/name", "http://schema.org/brand",
         "http://a.example/x/weird-name", "http://b.example/x/weird-name"]
    )  # fmt: skip
    assert names["http://schema.org/brand"] == "brand"
    assert names["http://schema.org/name"] == "schema_name"
    assert names["http://xmlns.com/foaf/0.1/name"] == "foaf_name"
    assert len(set(names.values())) == 5
    assert all(n.isidentifier() for n in names.values())
    # deterministic whatever the input order
    assert unique_local_names(list(reversed(list(names)))) == names
