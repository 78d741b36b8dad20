"""Rename users.name to users.full_name without downtime, phase by phase.

expand      add full_name, and a trigger that keeps name and full_name equal
            whichever app version writes (old versions write only name, new
            versions only full_name)
backfill    copy name into full_name for the rows that existed before
switch-read readers may use full_name; a validated CHECK proves it is never NULL
contract    full_name NOT NULL (using the validated check); name nullable first, so
            new versions (which leave name out) can still insert once the trigger is
            gone and before name is; then drop the trigger and name
"""

revision = "0002_rename_users_name"
down_revision = "0001_create_users"

# shop 1.5 writes both columns; 2.0 reads full_name and no longer touches name
compat = {"shop": {"dual_write_from": "1.5", "read_new_from": "2.0", "old_unused_from": "2.0"}}

SYNC_FUNCTION = """
CREATE OR REPLACE FUNCTION public.zdm_0002_users_name_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.full_name IS NULL THEN
            NEW.full_name := NEW.name;
        ELSIF NEW.name IS NULL THEN
            NEW.name := NEW.full_name;
        END IF;
    ELSIF NEW.name IS DISTINCT FROM OLD.name
          AND NEW.full_name IS NOT DISTINCT FROM OLD.full_name THEN
        NEW.full_name := NEW.name;
    ELSIF NEW.full_name IS DISTINCT FROM OLD.full_name
          AND NEW.name IS NOT DISTINCT FROM OLD.name THEN
        NEW.name := NEW.full_name;
    END IF;
    RETURN NEW;
END
$$
"""


def expand(ctx):
    ctx.execute("ALTER TABLE public.users ADD COLUMN full_name text")
    ctx.execute(SYNC_FUNCTION)
    ctx.execute(
        "CREATE TRIGGER zdm_0002_users_name_sync BEFORE INSERT OR UPDATE ON public.users "
        "FOR EACH ROW EXECUTE FUNCTION public.zdm_0002_users_name_sync()"
    )


def rollback_expand(ctx):
    ctx.execute("DROP TRIGGER IF EXISTS zdm_0002_users_name_sync ON public.users")
    ctx.execute("DROP FUNCTION IF EXISTS public.zdm_0002_users_name_sync()")
    ctx.execute("ALTER TABLE public.users DROP COLUMN IF EXISTS full_name")


def backfill(ctx):
    ctx.backfill("users", set={"full_name": "name"}, where="full_name IS DISTINCT FROM name")


def switch_read(ctx):
    ctx.execute(
        "ALTER TABLE public.users ADD CONSTRAINT users_full_name_not_null "
        "CHECK (full_name IS NOT NULL) NOT VALID"
    )
    ctx.execute("ALTER TABLE public.users VALIDATE CONSTRAINT users_full_name_not_null")


def rollback_switch_read(ctx):
    ctx.execute("ALTER TABLE public.users DROP CONSTRAINT IF EXISTS users_full_name_not_null")


def contract(ctx):
    ctx.execute("ALTER TABLE public.users ALTER COLUMN full_name SET NOT NULL")
    ctx.execute("ALTER TABLE public.users DROP CONSTRAINT users_full_name_not_null")
    ctx.execute("ALTER TABLE public.users ALTER COLUMN name DROP NOT NULL")
    ctx.execute("DROP TRIGGER zdm_0002_users_name_sync ON public.users")
    ctx.execute("DROP FUNCTION public.zdm_0002_users_name_sync()")
    ctx.execute("ALTER TABLE public.users DROP COLUMN name")
