"""The "Mem0 with Milvus" quickstart, with only the import changed. Runs with no network."""

from localmem import Memory

config = {
    "vector_store": {
        "provider": "milvus",
        "config": {
            "collection_name": "quickstart_mem0_with_milvus",
            "embedding_model_dims": "1536",
            "url": "./milvus.db",
        },
    },
    "version": "v1.1",
}

m = Memory.from_config(config)

# Add a memory to user: Working on improving tennis skills
res = m.add(
    messages="I am working on improving my tennis skills.",
    user_id="alice",
    metadata={"category": "hobbies"},
)
print(res)

# Get memory_id
memory_id = res["results"][0]["id"]

# Update this memory
m.update(memory_id=memory_id, data="Likes to play tennis on weekends")

# Get all memory for the user Alice
print(m.get_all(user_id="alice"))

# The change history of the memory
print(m.history(memory_id=memory_id))

new_mem = m.add(
    "I have a linear algebra midterm exam on November 20",
    user_id="alice",
    metadata={"category": "task"},
)
print(new_mem)

print(m.get_all(user_id="alice"))
print(m.search(query="What are Alice's hobbies", user_id="alice"))

m.delete(memory_id=memory_id)
print(m.get_all("alice"))
