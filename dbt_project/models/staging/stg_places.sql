-- One row per accident (raw.places): the road where it happened. Zero codes that the
-- code book lists as "not recorded" become NULL.
with source as (
    select * from {{ source('raw', 'places') }}
),

renamed as (
    select
        Num_Acc as num_acc,
        catr as road_category_code,
        nullif(trim(voie), '') as road_number,
        nullif(v1, 0) as road_number_index,
        nullif(trim(v2), '') as road_number_letter,
        nullif(circ, 0) as traffic_regime_code,
        nullif(nbv, 0) as lane_count,
        nullif(trim(pr), '') as reference_marker,
        try_cast(pr1 as integer) as distance_from_marker_m,
        nullif(vosp, 0) as reserved_lane_code,
        nullif(prof, 0) as road_profile_code,
        nullif(plan, 0) as road_alignment_code,
        nullif(lartpc, 0) as central_reserve_width,
        nullif(larrout, 0) as carriageway_width,
        nullif(surf, 0) as surface_condition_code,
        nullif(infra, 0) as infrastructure_code,
        nullif(situ, 0) as situation_code,
        env1 as school_proximity_code
    from source
)

select * from renamed
