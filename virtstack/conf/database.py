"""[database]: the service database (SQLite by default)."""

from oslo_config import cfg

db_group = cfg.OptGroup("database", title="Database options")

opts = [
    cfg.StrOpt("connection", default=None, secret=True,
               help="SQLAlchemy URL. Default: SQLite file 'virtstack.sqlite' in "
                    "state_path. PostgreSQL: 'postgresql+psycopg2://user@host/db'; "
                    "MariaDB: 'mysql+pymysql://root@127.0.0.1/db'."),
    cfg.IntOpt("pool_size", default=10, min=1, help="Connections kept open (server databases)."),
    cfg.BoolOpt("persist_flows", default=True,
                help="Store TaskFlow flow state in the database so a restarted "
                     "service resumes or rolls back interrupted operations."),
]


def register_opts(conf):
    conf.register_group(db_group)
    conf.register_opts(opts, group=db_group)


def list_opts():
    return {db_group: opts}
