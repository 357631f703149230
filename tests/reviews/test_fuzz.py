"""A fuzz pass over the write endpoints: whatever the body, never a 5xx."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from reviews import services
from reviews.models import Role
from tests.conftest import DOC_CONTENT, client_for

pytestmark = pytest.mark.django_db

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                            max_size=3), max_leaves=6)
anchor = st.fixed_dictionaries({}, optional={"quote": values, "start": values, "end": values, "prefix": values,
                                             "suffix": values})
bodies = st.fixed_dictionaries({}, optional={
    "docPath": st.one_of(st.just("guides/setup.md"), values), "body": values, "anchor": st.one_of(anchor, values),
    "parent": values, "replacement": values, "note": values, "title": values, "path": values, "content": values,
    "visibility": values, "resolved": values, "hidden": values, "username": values, "role": values,
    "target": values, "position": values,
})

ENDPOINTS = [
    ("post", "/api/comments/"), ("post", "/api/suggestions/"), ("post", "/api/discussions/"),
    ("post", "/api/documents/"), ("patch", "/api/documents/{doc}/"), ("post", "/api/documents/{doc}/members/"),
    ("patch", "/api/comments/{comment}/"), ("patch", "/api/suggestions/{suggestion}/"),
    ("post", "/api/discussions/{discussion}/messages/"), ("post", "/api/typing/"), ("post", "/api/cursor/"),
]


@pytest.fixture
def targets(maintainer, reviewer, settings):
    settings.WRITE_RATE_BURST = 10**9  # the fuzz is about input, not the rate limit
    doc = services.document_create(user=maintainer, path="guides/setup.md", title="Setup", content=DOC_CONTENT)
    services.member_set(document=doc, user=reviewer, role=Role.REVIEWER)
    comment = services.comment_create(author=maintainer, document=doc, body="c")
    suggestion = services.suggestion_create(author=maintainer, document=doc, replacement="x",
                                            anchor={"quote": "Setup", "start": 2, "end": 7})
    discussion = services.discussion_create(author=maintainer, document=doc, title="d")
    ids = {"doc": doc.pk, "comment": comment.pk, "suggestion": suggestion.pk, "discussion": discussion.pk}
    return client_for(maintainer), ids


@pytest.mark.parametrize("method,template", ENDPOINTS)
def test_write_endpoints_never_answer_5xx(targets, method, template):
    client, ids = targets
    url = template.format(**ids)

    @hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=st.one_of(bodies, values), raw=st.one_of(st.none(), st.text(max_size=60)))
    def run(body, raw):
        if raw is None:
            response = getattr(client, method)(url, body, format="json")
        else:  # not even JSON, or JSON with NaN and friends
            response = getattr(client, method)(url, raw, content_type="application/json")
        assert response.status_code < 500, (body, raw, response.status_code, response.content[:300])

    run()
