from deskpilot.platform import Platform
from tests.conftest import TenantFixture


async def test_tenant_fixture_resolves(platform: Platform, tenant_a: TenantFixture) -> None:
    assert tenant_a.context.tenant_id == tenant_a.slug
    keys = await platform.tenant(tenant_a.context).keys.list()
    assert [k.name for k in keys] == ["fixture"]
