"""Extension instances only; they are bound to the app in create_app()."""

from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from portal.database import Base
from portal.jobs.worker import PortalRQ

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
babel = Babel()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
bootstrap = Bootstrap5()
rq = PortalRQ()  # `flask rq worker` fails the jobs of dead workers at once
