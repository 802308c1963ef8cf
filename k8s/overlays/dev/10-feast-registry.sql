-- The Feast SQL registry lives in its own database beside the portal's (portal_feast_registry:
-- the name settings derive from DATABASE_URL's "portal").
CREATE DATABASE portal_feast_registry OWNER portal;
