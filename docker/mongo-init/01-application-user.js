// Runs once, when the mongo container starts on an empty data volume: fraudstream's own user,
// allowed to read and write its database and nothing else (the root user stays for operators).
const database = process.env.FRAUDSTREAM_MONGO_DATABASE || "fraudstream";
const username = process.env.FRAUDSTREAM_MONGO_USERNAME;
const password = process.env.FRAUDSTREAM_MONGO_PASSWORD;
if (!username || !password) {
  throw new Error(
    "FRAUDSTREAM_MONGO_USERNAME and FRAUDSTREAM_MONGO_PASSWORD must be set in docker/.env " +
      "(see docker/.env.example)"
  );
}
db.getSiblingDB("admin").createUser({
  user: username,
  pwd: password,
  roles: [{ role: "readWrite", db: database }],
});
