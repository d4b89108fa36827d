"""The OpenAPI document and the docs page, served without any CDN."""


def test_docs_page_uses_local_assets(client):
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "//cdn" not in html and "unpkg" not in html
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_openapi_names_every_v1_resource(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["info"]["title"].startswith("hcp")
    for path in ("/api/v1/ratings", "/api/v1/ratings/batch", "/api/v1/ratings/{rating_id}",
                 "/api/v1/auth/token", "/api/v1/cases", "/api/v1/cases/{case_id}"):
        assert path in doc["paths"], path
