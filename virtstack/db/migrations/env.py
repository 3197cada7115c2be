"""alembic environment: runs on the engine virtstack.db.api configured."""

from alembic import context

from virtstack.db import api as db_api
from virtstack.db import models

config = context.config
target_metadata = models.Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or db_api.get_engine()
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite",
                          version_table=db_api.VERSION_TABLE,
                          include_object=db_api.include_object, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
