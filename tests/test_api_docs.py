"""The OpenAPI document and the docs page, served without any CDN."""
import subprocess
import sys


def test_docs_page_uses_local_assets(client):
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "//cdn" not in html and "unpkg" not in html
    asset = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()


def test_openapi_names_every_v1_resource(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["info"]["title"].startswith("hcp")
    for path in ("/api/v1/ratings", "/api/v1/ratings/batch", "/api/v1/ratings/{rating_id}",
                 "/api/v1/auth/token", "/api/v1/cases", "/api/v1/cases/{case_id}"):
        assert path in doc["paths"], path


def test_every_schema_has_its_own_component_name(hcp_env):
    """apispec renames a schema whose name another variant already took (InvitationOut
    once did): the renamed component is a name no client was told about. Built in a fresh
    process, since the schemas are resolved once, when the blueprints are registered."""
    code = "from service import create_app; create_app()"
    run = subprocess.run([sys.executable, "-W", "error::UserWarning:apispec.ext.marshmallow.openapi", "-c", code],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
