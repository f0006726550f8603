"""The partner and contract registers are protected like the journal: the database refuses
changes the services never make (invariant 4).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

The triggers below are copied, not imported, from partners/schema.py and
contracts/schema.py (through ledger.schema.protection_ddl): a migration is a frozen record
of what was applied. tests/test_schema.py checks that both agree.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


SQLITE_TRIGGERS = [
    "CREATE TRIGGER partners_no_delete BEFORE DELETE ON partners BEGIN SELECT RAISE(ABORT, 'partners: partners are never deleted; offboard them instead'); END",
    "CREATE TRIGGER agreements_no_update BEFORE UPDATE ON agreements BEGIN SELECT RAISE(ABORT, 'agreements: agreements never change; add a version instead'); END",
    "CREATE TRIGGER agreements_no_delete BEFORE DELETE ON agreements BEGIN SELECT RAISE(ABORT, 'agreements: agreements never change; add a version instead'); END",
    "CREATE TRIGGER agreement_versions_no_update BEFORE UPDATE ON agreement_versions WHEN NOT (OLD.effective_to IS NULL AND NEW.effective_to IS NOT NULL AND NEW.agreement_id = OLD.agreement_id AND NEW.version = OLD.version AND NEW.effective_from = OLD.effective_from AND NEW.terms = OLD.terms AND NEW.terms_hash = OLD.terms_hash AND NEW.created_at = OLD.created_at AND NEW.created_by = OLD.created_by) BEGIN SELECT RAISE(ABORT, 'agreement_versions: agreement versions never change; add a version instead (only an open version may be ended)'); END",
    "CREATE TRIGGER agreement_versions_no_delete BEFORE DELETE ON agreement_versions BEGIN SELECT RAISE(ABORT, 'agreement_versions: agreement versions never change; add a version instead (only an open version may be ended)'); END",
    "CREATE TRIGGER customers_no_delete BEFORE DELETE ON customers BEGIN SELECT RAISE(ABORT, 'customers: customers are never deleted'); END",
    "CREATE TRIGGER price_plans_no_update BEFORE UPDATE ON price_plans BEGIN SELECT RAISE(ABORT, 'price_plans: price plans never change; load a new plan instead'); END",
    "CREATE TRIGGER price_plans_no_delete BEFORE DELETE ON price_plans BEGIN SELECT RAISE(ABORT, 'price_plans: price plans never change; load a new plan instead'); END",
    "CREATE TRIGGER contracts_no_delete BEFORE DELETE ON contracts BEGIN SELECT RAISE(ABORT, 'contracts: contracts are never deleted; terminate them instead'); END",
    "CREATE TRIGGER contract_versions_no_update BEFORE UPDATE ON contract_versions BEGIN SELECT RAISE(ABORT, 'contract_versions: contract versions never change; add an amendment instead'); END",
    "CREATE TRIGGER contract_versions_no_delete BEFORE DELETE ON contract_versions BEGIN SELECT RAISE(ABORT, 'contract_versions: contract versions never change; add an amendment instead'); END",
    "CREATE TRIGGER contract_events_no_update BEFORE UPDATE ON contract_events BEGIN SELECT RAISE(ABORT, 'contract_events: recorded events never change'); END",
    "CREATE TRIGGER contract_events_no_delete BEFORE DELETE ON contract_events BEGIN SELECT RAISE(ABORT, 'contract_events: recorded events never change'); END",
]

POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER partners_no_delete BEFORE DELETE ON partners FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('partners are never deleted; offboard them instead')",
    "CREATE TRIGGER partners_no_truncate BEFORE TRUNCATE ON partners FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('partners are never deleted; offboard them instead')",
    "CREATE TRIGGER agreements_no_update BEFORE UPDATE ON agreements FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('agreements never change; add a version instead')",
    "CREATE TRIGGER agreements_no_delete BEFORE DELETE ON agreements FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('agreements never change; add a version instead')",
    "CREATE TRIGGER agreements_no_truncate BEFORE TRUNCATE ON agreements FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('agreements never change; add a version instead')",
    "CREATE TRIGGER agreement_versions_no_update BEFORE UPDATE ON agreement_versions FOR EACH ROW WHEN (NOT (OLD.effective_to IS NULL AND NEW.effective_to IS NOT NULL AND NEW.agreement_id = OLD.agreement_id AND NEW.version = OLD.version AND NEW.effective_from = OLD.effective_from AND NEW.terms = OLD.terms AND NEW.terms_hash = OLD.terms_hash AND NEW.created_at = OLD.created_at AND NEW.created_by = OLD.created_by)) EXECUTE FUNCTION ecoledger_refuse_change('agreement versions never change; add a version instead (only an open version may be ended)')",
    "CREATE TRIGGER agreement_versions_no_delete BEFORE DELETE ON agreement_versions FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('agreement versions never change; add a version instead (only an open version may be ended)')",
    "CREATE TRIGGER agreement_versions_no_truncate BEFORE TRUNCATE ON agreement_versions FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('agreement versions never change; add a version instead (only an open version may be ended)')",
    "CREATE TRIGGER customers_no_delete BEFORE DELETE ON customers FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('customers are never deleted')",
    "CREATE TRIGGER customers_no_truncate BEFORE TRUNCATE ON customers FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('customers are never deleted')",
    "CREATE TRIGGER price_plans_no_update BEFORE UPDATE ON price_plans FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('price plans never change; load a new plan instead')",
    "CREATE TRIGGER price_plans_no_delete BEFORE DELETE ON price_plans FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('price plans never change; load a new plan instead')",
    "CREATE TRIGGER price_plans_no_truncate BEFORE TRUNCATE ON price_plans FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('price plans never change; load a new plan instead')",
    "CREATE TRIGGER contracts_no_delete BEFORE DELETE ON contracts FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('contracts are never deleted; terminate them instead')",
    "CREATE TRIGGER contracts_no_truncate BEFORE TRUNCATE ON contracts FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('contracts are never deleted; terminate them instead')",
    "CREATE TRIGGER contract_versions_no_update BEFORE UPDATE ON contract_versions FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('contract versions never change; add an amendment instead')",
    "CREATE TRIGGER contract_versions_no_delete BEFORE DELETE ON contract_versions FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('contract versions never change; add an amendment instead')",
    "CREATE TRIGGER contract_versions_no_truncate BEFORE TRUNCATE ON contract_versions FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('contract versions never change; add an amendment instead')",
    "CREATE TRIGGER contract_events_no_update BEFORE UPDATE ON contract_events FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('recorded events never change')",
    "CREATE TRIGGER contract_events_no_delete BEFORE DELETE ON contract_events FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('recorded events never change')",
    "CREATE TRIGGER contract_events_no_truncate BEFORE TRUNCATE ON contract_events FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('recorded events never change')",
]


def upgrade() -> None:
    statements = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_TRIGGERS if sqlite else POSTGRESQL_TRIGGERS:
        name, table = statement.split()[2], statement.split(" ON ")[1].split()[0]
        op.execute(f"DROP TRIGGER {name}" if sqlite else f"DROP TRIGGER {name} ON {table}")

